import { invalidOption } from '../errors'
import { checkInteger, checkNumber, checkRecord } from '../options/validate'

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

function oneOf<T extends string> (pool: string, field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidOption(pool, field, value, `must be one of ${allowed.join(', ')}`)
  }
  return value as T
}

function resolveStatuses (pool: string, value: unknown): Array<readonly [number, number]> {
  const field = 'healthCheck.expectedStatuses'
  if (!Array.isArray(value) || value.length === 0) throw invalidOption(pool, field, value, 'must be a non-empty array of statuses or [from, to] ranges')
  return value.map((entry: unknown, i) => {
    if (Array.isArray(entry)) {
      if (entry.length !== 2) throw invalidOption(pool, `${field}[${i}]`, entry, 'a range is [from, to]')
      const from = checkInteger(pool, `${field}[${i}][0]`, entry[0], 100, 599)
      const to = checkInteger(pool, `${field}[${i}][1]`, entry[1], from, 599)
      return [from, to] as const
    }
    const status = checkInteger(pool, `${field}[${i}]`, entry, 100, 599)
    return [status, status] as const
  })
}

function resolveBody (pool: string, value: unknown): string | RegExp | null {
  if (value === undefined) return null
  if (typeof value === 'string' && value.length > 0) return value
  // A global or sticky RegExp remembers lastIndex between test() calls: every check must start afresh.
  if (value instanceof RegExp) return new RegExp(value.source, value.flags.replace(/[gy]/g, ''))
  throw invalidOption(pool, 'healthCheck.body', value, 'must be a non-empty string or a RegExp')
}

const CHECK_KEYS = new Set(['type', 'path', 'method', 'expectedStatuses', 'body', 'host', 'port', 'timeout', 'interval', 'jitter', 'healthyThreshold', 'unhealthyThreshold', 'initialState'])
const HTTP_ONLY = ['path', 'method', 'expectedStatuses', 'body', 'host']

/** Validates `healthCheck`; null when active checks are off (the default). */
export function resolveHealthCheck (pool: string, value: unknown): ResolvedHealthCheck | null {
  if (value === undefined || value === false) return null
  const spec = checkRecord(pool, 'healthCheck', value, CHECK_KEYS)
  const type = oneOf(pool, 'healthCheck.type', spec.type ?? 'http', ['http', 'tcp'] as const)
  if (type === 'tcp') {
    for (const key of HTTP_ONLY) {
      if (spec[key] !== undefined) throw invalidOption(pool, `healthCheck.${key}`, spec[key], "applies to type 'http' only")
    }
  }
  const path = spec.path ?? '/health'
  if (typeof path !== 'string' || !/^\/[^\s#]*$/.test(path)) {
    throw invalidOption(pool, 'healthCheck.path', path, "must be a path starting with '/', without spaces or a fragment")
  }
  const method = spec.method ?? 'GET'
  if (typeof method !== 'string' || !/^[A-Za-z]+$/.test(method)) throw invalidOption(pool, 'healthCheck.method', method, 'must be a method name')
  const host = spec.host ?? null
  if (host !== null && (typeof host !== 'string' || !/^[A-Za-z0-9.:[\]-]+$/.test(host))) {
    throw invalidOption(pool, 'healthCheck.host', host, 'must be a host name, optionally with a port')
  }
  const resolved: Omit<ResolvedHealthCheck, 'key'> = {
    type,
    path,
    method: method.toUpperCase(),
    expectedStatuses: spec.expectedStatuses === undefined ? [[200, 399]] : resolveStatuses(pool, spec.expectedStatuses),
    body: resolveBody(pool, spec.body),
    host,
    port: spec.port === undefined ? null : checkInteger(pool, 'healthCheck.port', spec.port, 1, 65535),
    timeout: checkInteger(pool, 'healthCheck.timeout', spec.timeout ?? 2000, 1, 600_000),
    interval: checkInteger(pool, 'healthCheck.interval', spec.interval ?? 5000, 1, 3_600_000),
    jitter: checkNumber(pool, 'healthCheck.jitter', spec.jitter ?? 0.1, 0, 1),
    healthyThreshold: checkInteger(pool, 'healthCheck.healthyThreshold', spec.healthyThreshold ?? 2, 1, 1000),
    unhealthyThreshold: checkInteger(pool, 'healthCheck.unhealthyThreshold', spec.unhealthyThreshold ?? 3, 1, 1000),
    initialState: oneOf(pool, 'healthCheck.initialState', spec.initialState ?? 'healthy', ['healthy', 'unhealthy'] as const)
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
  const spec = checkRecord(pool, 'outlierDetection', value, OUTLIER_KEYS)
  const failOn = spec.failOn ?? FAILURES
  if (!Array.isArray(failOn)) throw invalidOption(pool, 'outlierDetection.failOn', failOn, `must be an array of ${FAILURES.join(', ')}`)
  failOn.forEach((f, i) => oneOf(pool, `outlierDetection.failOn[${i}]`, f, FAILURES))
  const baseEjectionTime = checkInteger(pool, 'outlierDetection.baseEjectionTime', spec.baseEjectionTime ?? 30_000, 1, 86_400_000)
  const maxEjectionTime = checkInteger(pool, 'outlierDetection.maxEjectionTime', spec.maxEjectionTime ?? Math.max(300_000, baseEjectionTime), baseEjectionTime, 86_400_000)
  const uneject = spec.unejectOnActiveCheck ?? true
  if (typeof uneject !== 'boolean') throw invalidOption(pool, 'outlierDetection.unejectOnActiveCheck', uneject, 'must be a boolean')
  return {
    consecutiveFailures: checkInteger(pool, 'outlierDetection.consecutiveFailures', spec.consecutiveFailures ?? 5, 1, 1000),
    failOn: new Set(failOn as OutlierFailure[]),
    baseEjectionTime,
    maxEjectionTime,
    maxEjectionPercent: checkNumber(pool, 'outlierDetection.maxEjectionPercent', spec.maxEjectionPercent ?? 0.5, 0, 1),
    unejectOnActiveCheck: uneject
  }
}

/** Validates `slowStart`; null when it is off (the default). */
export function resolveSlowStart (pool: string, value: unknown): ResolvedSlowStart | null {
  if (value === undefined || value === false) return null
  const spec = checkRecord(pool, 'slowStart', value, SLOW_START_KEYS)
  return {
    window: checkInteger(pool, 'slowStart.window', spec.window, 1, 3_600_000),
    minWeight: checkNumber(pool, 'slowStart.minWeight', spec.minWeight ?? 0.1, 0.01, 1)
  }
}

/** Validates `panicThreshold`: a share from 0 (off, the default) to 1. */
export function resolvePanicThreshold (pool: string, value: unknown): number {
  return checkNumber(pool, 'panicThreshold', value ?? 0, 0, 1)
}
