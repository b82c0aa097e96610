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

export type { Balancer, BalancerFactory, BalancerOptions, PickContext } from './balancer'
