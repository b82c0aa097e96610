import type { BalancerFactory } from './balancer'
import { ipHash } from './hash/ip-hash'
import { leastConnections } from './least-connections'
import { maglev } from './hash/maglev'
import { p2cEwma } from './p2c-ewma'
import { random } from './random'
import { consistentHash } from './hash/ring'
import { roundRobin } from './round-robin'
import { weightedRoundRobin } from './weighted-round-robin'

/** Every balancing algorithm by the name users configure. */
export const algorithms = {
  'round-robin': roundRobin,
  'weighted-round-robin': weightedRoundRobin,
  'least-connections': leastConnections,
  'p2c-ewma': p2cEwma,
  random,
  'ip-hash': ipHash,
  'consistent-hash': consistentHash,
  maglev
} satisfies Record<string, BalancerFactory>

export type AlgorithmName = keyof typeof algorithms

/** What an algorithm needs of a request besides the pool's targets. */
export interface AlgorithmTraits {
  /** A key read by the pool's hashKey; without one, hashFallback picks. */
  readonly hashKey: boolean
  /** The client's address (request.ip), whatever the hash key. */
  readonly clientAddress: boolean
}

const NOTHING: AlgorithmTraits = { hashKey: false, clientAddress: false }

/** The traits of every algorithm: what options and the pool ask instead of testing names. */
export const traits: Readonly<Record<AlgorithmName, AlgorithmTraits>> = {
  'round-robin': NOTHING,
  'weighted-round-robin': NOTHING,
  'least-connections': NOTHING,
  'p2c-ewma': NOTHING,
  random: NOTHING,
  'ip-hash': { hashKey: false, clientAddress: true },
  'consistent-hash': { hashKey: true, clientAddress: false },
  maglev: { hashKey: true, clientAddress: false }
}

export type { Balancer, BalancerFactory, BalancerOptions, PickContext } from './balancer'
