import { OptionReader } from '../options/reader'

/** An expected status, or an inclusive range of them such as [200, 399]. */
export type StatusMatch = number | [number, number]

export interface HealthCheckOptions {
  /** 'http' requests a path; 'tcp' only opens a connection (default 'http'). */
  type?: 'http' | 'tcp'
  /** HTTP: the path requested, below the target's base path (default '/health'). */
  path?: string
  /** HTTP: the method (default 'GET'). */
  method?: string
  /** HTTP: statuses that pass (default [[200, 399]]). */
  expectedStatuses?: StatusMatch[]
  /** HTTP: the body must contain this string or match this RegExp (default: not read). */
  body?: string | RegExp
  /** HTTP: the Host header sent (default: the target's host and port). */
  host?: string
  /** Port checked instead of the target's own (default: the target's). */
  port?: number
  /** A check that has not finished after this many ms fails (default 2000). */
  timeout?: number
  /** Time from the start of one check to the start of the next, in ms (default 5000). */
  interval?: number
  /** The interval while this check sees the target unhealthy, in ms (default: `interval`). */
  unhealthyInterval?: number
  /** Each interval is drawn from interval x (1 +- jitter) (default 0.1). */
  jitter?: number
  /** Consecutive passing checks that make an unhealthy target healthy (default 2). */
  healthyThreshold?: number
  /** Consecutive failed checks that make a healthy target unhealthy (default 3). */
  unhealthyThreshold?: number
  /** The state before the first check, which then decides on its own (default 'healthy'). */
  initialState?: 'healthy' | 'unhealthy'
}

/** What counts as a failure for outlier detection. */
export type OutlierFailure = 'connect' | 'timeout' | 'reset' | '5xx'

export interface OutlierDetectionOptions {
  /** Consecutive failed tries that eject a target (default 5). */
  consecutiveFailures?: number
  /** Which failures count (default all: 'connect', 'timeout', 'reset', '5xx'). */
  failOn?: OutlierFailure[]
  /** The first ejection lasts this long; the n-th n times as long, in ms (default 30000). */
  baseEjectionTime?: number
  /** No ejection lasts longer, in ms (default 300000). */
  maxEjectionTime?: number
  /** Share of the pool that may be ejected at once, rounded down (default 0.5). */
  maxEjectionPercent?: number
  /** A passing active health check ends an ejection (default true). */
  unejectOnActiveCheck?: boolean
}

export interface SlowStartOptions {
  /** How long the weight ramps, in ms. */
  window: number
  /** Share of its weight a target starts from (default 0.1). */
  minWeight?: number
}

export interface ResolvedHealthCheck {
  type: 'http' | 'tcp'
  path: string
  method: string
  expectedStatuses: ReadonlyArray<readonly [number, number]>
  body: string | RegExp | null
  host: string | null
  port: number | null
  timeout: number
  interval: number
  unhealthyInterval: number
  jitter: number
  healthyThreshold: number
  unhealthyThreshold: number
  initialState: 'healthy' | 'unhealthy'
  /** Identifies the check: targets with the same URL and key share one state machine. */
  key: string
}

export interface ResolvedOutlierDetection {
  consecutiveFailures: number
  failOn: ReadonlySet<OutlierFailure>
  baseEjectionTime: number
  maxEjectionTime: number
  maxEjectionPercent: number
  unejectOnActiveCheck: boolean
}

export interface ResolvedSlowStart {
  window: number
  minWeight: number
}

/** Lists the choices unquoted, as these messages always have. */
function oneOf<T extends string> (r: OptionReader, key: string | number, fallback: T | undefined, allowed: readonly T[]): T {
  return r.oneOf(key, fallback, allowed, `must be one of ${allowed.join(', ')}`)
}

function resolveStatuses (r: OptionReader): Array<readonly [number, number]> {
  const value = r.value('expectedStatuses')
  if (!Array.isArray(value) || value.length === 0) r.fail('expectedStatuses', 'must be a non-empty array of statuses or [from, to] ranges')
  const list = r.items('expectedStatuses', '')
  return list.map((i) => {
    if (!Array.isArray(list.value(i))) {
      const status = list.integer(i, undefined, 100, 599)
      return [status, status] as const
    }
    const range = list.items(i, '')
    if (range.keys().length !== 2) list.fail(i, 'a range is [from, to]')
    const from = range.integer(0, undefined, 100, 599)
    return [from, range.integer(1, undefined, from, 599)] as const
  })
}

function resolveBody (r: OptionReader): string | RegExp | null {
  const value = r.value('body')
  if (value === undefined) return null
  if (typeof value === 'string' && value.length > 0) return value
  // A global or sticky RegExp remembers lastIndex between test() calls: every check must start afresh.
  if (value instanceof RegExp) return new RegExp(value.source, value.flags.replace(/[gy]/g, ''))
  return r.fail('body', 'must be a non-empty string or a RegExp')
}

const CHECK_KEYS = new Set(['type', 'path', 'method', 'expectedStatuses', 'body', 'host', 'port', 'timeout', 'interval', 'unhealthyInterval', 'jitter',
  'healthyThreshold', 'unhealthyThreshold', 'initialState'])
const HTTP_ONLY = ['path', 'method', 'expectedStatuses', 'body', 'host']
const CHECK_PATH = /^\/[^\s#]*$/
const HOST = /^[A-Za-z0-9.:[\]-]+$/

/**
 * Reads the pool option `healthCheck`: one check or a list of them, every one
 * of which a target must pass; null when active checks are off (the default).
 */
export function resolveHealthCheck (pool: OptionReader): readonly ResolvedHealthCheck[] | null {
  const value = pool.value('healthCheck')
  if (value === undefined || value === false) return null
  if (Array.isArray(value) && value.length === 0) pool.fail('healthCheck', 'must be a check object or a non-empty array of them')
  const checks = pool.oneOrMany('healthCheck', (at, key) => resolveCheck(at.object(key).known(CHECK_KEYS, 'is not a healthCheck option')))
  // The same check twice would be one state machine counted twice.
  checks.forEach((check, i) => {
    const first = checks.findIndex((c) => c.key === check.key)
    if (first !== i) pool.items('healthCheck', '').fail(i, `is the same check as healthCheck[${first}]`)
  })
  return checks
}

function resolveCheck (r: OptionReader): ResolvedHealthCheck {
  const type = oneOf(r, 'type', 'http', ['http', 'tcp'] as const)
  if (type === 'tcp') {
    for (const key of HTTP_ONLY) if (r.has(key)) r.fail(key, "applies to type 'http' only")
  }
  const path = r.matching('path', '/health', CHECK_PATH, "must be a path starting with '/', without spaces or a fragment")
  const method = r.method('method', 'GET')
  const host = r.value('host') == null ? null : r.matching('host', undefined, HOST, 'must be a host name, optionally with a port')
  const interval = r.integer('interval', 5000, 1, 3_600_000)
  const resolved: Omit<ResolvedHealthCheck, 'key'> = {
    type,
    path,
    method,
    expectedStatuses: r.has('expectedStatuses') ? resolveStatuses(r) : [[200, 399]],
    body: resolveBody(r),
    host,
    port: r.optionalInteger('port', 1, 65535) ?? null,
    timeout: r.integer('timeout', 2000, 1, 600_000),
    interval,
    unhealthyInterval: r.integer('unhealthyInterval', interval, 1, 3_600_000),
    jitter: r.number('jitter', 0.1, 0, 1),
    healthyThreshold: r.integer('healthyThreshold', 2, 1, 1000),
    unhealthyThreshold: r.integer('unhealthyThreshold', 3, 1, 1000),
    initialState: oneOf(r, 'initialState', 'healthy', ['healthy', 'unhealthy'] as const)
  }
  const key = JSON.stringify(resolved, (_k, v: unknown) => v instanceof RegExp ? String(v) : v)
  return { ...resolved, key }
}

const OUTLIER_KEYS = new Set(['consecutiveFailures', 'failOn', 'baseEjectionTime', 'maxEjectionTime', 'maxEjectionPercent', 'unejectOnActiveCheck'])
const SLOW_START_KEYS = new Set(['window', 'minWeight'])
const FAILURES: readonly OutlierFailure[] = ['connect', 'timeout', 'reset', '5xx']

/** Validates `outlierDetection`; null when it is off (the default). */
export function resolveOutlierDetection (pool: string, value: unknown): ResolvedOutlierDetection | null {
  if (value === undefined || value === false) return null
  const r = OptionReader.record(pool, 'outlierDetection', value, OUTLIER_KEYS)
  const failOn = r.items('failOn', `must be an array of ${FAILURES.join(', ')}`, FAILURES)
  const failures = failOn.map((i) => oneOf(failOn, i, undefined, FAILURES))
  const baseEjectionTime = r.integer('baseEjectionTime', 30_000, 1, 86_400_000)
  const maxEjectionTime = r.integer('maxEjectionTime', Math.max(300_000, baseEjectionTime), baseEjectionTime, 86_400_000)
  const unejectOnActiveCheck = r.boolean('unejectOnActiveCheck', true)
  return {
    consecutiveFailures: r.integer('consecutiveFailures', 5, 1, 1000),
    failOn: new Set(failures),
    baseEjectionTime,
    maxEjectionTime,
    maxEjectionPercent: r.number('maxEjectionPercent', 0.5, 0, 1),
    unejectOnActiveCheck
  }
}

/** Validates `slowStart`; null when it is off (the default). */
export function resolveSlowStart (pool: string, value: unknown): ResolvedSlowStart | null {
  if (value === undefined || value === false) return null
  const r = OptionReader.record(pool, 'slowStart', value, SLOW_START_KEYS)
  return {
    window: r.integer('window', undefined, 1, 3_600_000),
    minWeight: r.number('minWeight', 0.1, 0.01, 1)
  }
}

/** Reads the pool option `panicThreshold`: a share from 0 (off, the default) to 1. */
export function resolvePanicThreshold (pool: OptionReader): number {
  return pool.number('panicThreshold', 0, 0, 1)
}
