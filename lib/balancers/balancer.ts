import type { Target } from '../pool/target'

/**
 * What a pick reads of a request: its hash key and its client address, read
 * once by the front-end (route/ for Fastify) from whatever request it serves.
 */
export interface PickInput {
  /** The request's hash key for hashing algorithms; undefined when it has none (the pool's hashFallback then picks). */
  readonly key: string | undefined
  /** The client address, for ip-hash and `hashKey: 'ip'`; '' when the pool needs none. */
  readonly ip: string
}

/**
 * What a balancer may use to choose. The pool owns one context object and
 * refills it before each pick, so picking allocates nothing.
 */
export interface PickContext {
  /** The hash key of the request (consistent hashing), or undefined when it has none. */
  key: string | undefined
  /** The client address as Fastify reports it (request.ip). */
  ip: string
  /** Targets already tried for this request; a retry must go elsewhere. Empty on the first try. */
  tried: readonly Target[]
  /** Sum of in-flight requests over the pool's eligible targets (bounded-load hashing). */
  poolInFlight: number
}

/**
 * One balancing algorithm. The pool calls update() with the eligible targets,
 * sorted by id, whenever membership, health, weight or drain state changes; pick()
 * must not filter, sort or allocate, and runs in O(1) or O(log n).
 */
export interface Balancer {
  /** Replaces the eligible set. The array is owned by the pool and not mutated afterwards. */
  update (targets: readonly Target[]): void
  /** Chooses a target, or undefined when the set is empty. */
  pick (ctx: PickContext): Target | undefined
  /** Called after a target's in-flight count changed, for algorithms that index by load. */
  loadChanged? (target: Target): void
  /** Whether pick() honours ctx.tried itself; otherwise the pool re-picks on retries. */
  readonly skipsTried?: boolean
}

/** Options every balancer factory receives. */
export interface BalancerOptions {
  /** Consistent hashing: ring points per unit of weight (default 160). */
  pointsPerWeight?: number
  /** Bounded loads: 0 disables; e.g. 1.25 lets a target take 25% above the average. */
  balanceFactor?: number
  /** Maglev table size, a prime (default 65537). */
  tableSize?: number
  /** Randomness source, for algorithms that draw (random, p2c); defaults to Math.random. */
  random?: () => number
  /** Clock in ms, for algorithms that read time (p2c-ewma); defaults to performance.now. */
  now?: () => number
}

export type BalancerFactory = (options: BalancerOptions) => Balancer
