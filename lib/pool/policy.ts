import { isDeepStrictEqual } from 'node:util'
import { invalidOption } from '../errors'
import { POOL_KEYS, resolvePoolOptions, type PoolOptions, type ResolvedPoolOptions } from '../options/resolve'
import { isRecord } from '../options/validate'

/**
 * The options pool.configure() changes on a live pool. Members come from
 * `targets` and discovery (add, remove, reconcile), and a `fallback`, a
 * `mirror` and a `circuitBreaker` link the pool to other state at startup: those
 * are set once.
 */
export const POLICY_KEYS = [
  'algorithm', 'hashKey', 'hashFallback', 'balanceFactor', 'pointsPerWeight', 'tableSize', 'overprovisioningFactor', 'panicThreshold',
  'timeout', 'sendTimeout', 'forwardedHeaders', 'bufferLimit', 'rewriteLocation', 'http2',
  'retry', 'affinity', 'healthCheck', 'outlierDetection', 'slowStart',
  'maxInFlight', 'queue', 'drainTimeout', 'tunnelIdleTimeout'
] as const

export type PolicyKey = typeof POLICY_KEYS[number]

/** What pool.configure() takes: some of the policy options; a key set to undefined goes back to its default. */
export type PoolPolicy = { [K in PolicyKey]?: PoolOptions[K] }

/**
 * What a configure() changed: emitted as the pool's 'configure' event. The admin API and file discovery log the
 * changes they make (the admin API also lists them on the status page); a call from code is the caller's to log.
 */
export interface PolicyChange {
  pool: string
  /** The options whose value changed, in the order of POLICY_KEYS. */
  changed: PolicyKey[]
  /** When it was applied (epoch ms). */
  at: number
}

/** Options whose change rebuilds the pool's balancers. */
export const BALANCING_KEYS: ReadonlySet<string> = new Set(['algorithm', 'hashKey', 'hashFallback', 'balanceFactor', 'pointsPerWeight', 'tableSize', 'overprovisioningFactor', 'panicThreshold'])

const POLICY = new Set<string>(POLICY_KEYS)

/**
 * The options a pool would have with `partial` applied, checked as the
 * plugin's options are (same FST_LB_INVALID_OPTION errors), and which of them
 * changed. Throws before anything is applied.
 */
export function resolvePolicy (current: ResolvedPoolOptions, partial: unknown): { options: ResolvedPoolOptions, changed: PolicyKey[] } {
  const name = current.name
  if (!isRecord(partial)) throw invalidOption(name, 'configure()', partial, 'must be an object of pool options')
  const merged: Record<string, unknown> = { ...current.source }
  for (const [key, value] of Object.entries(partial)) {
    if (!POOL_KEYS.has(key)) throw invalidOption(name, key, value, 'is not a pool option')
    if (!POLICY.has(key)) throw invalidOption(name, key, value, 'is set at startup: configure() does not change it')
    if (value === undefined) delete merged[key]
    else merged[key] = value
  }
  const options = resolvePoolOptions(name, merged)
  const changed = POLICY_KEYS.filter((key) => key in partial && !isDeepStrictEqual(current.source[key], merged[key]))
  return { options, changed }
}
