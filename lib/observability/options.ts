import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { Registry, type RegistryContentType } from 'prom-client'
import { OptionReader, type OptionKey } from '../options/reader'
import type { StatusReport } from './status-report'

/**
 * An `onRequest` hook that guards an observability route, e.g. by checking a
 * bearer token. It answers (401, 403, ...) to refuse; returning normally lets
 * the request through.
 */
export type RouteGuard = (
  this: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  done: HookHandlerDoneFunction
) => void | Promise<unknown>

/**
 * What a cluster worker's metrics and status routes answer with instead of its
 * own registry and report: the machine's (cluster mode, docs/cluster.md).
 */
export interface MachineView {
  metrics: (registry: MetricsRegistry) => Promise<string>
  /** The machine's status from this worker's own report. */
  status: (own: StatusReport) => Promise<StatusReport>
}

/** A prom-client registry of either text format (Prometheus or OpenMetrics). */
export type MetricsRegistry = Registry<RegistryContentType>

export interface MetricsOptions {
  /** Route serving the registry in its text format; false collects without serving (default '/metrics'). */
  path?: string | false
  /** The prom-client registry to add the metrics to (default: a registry of the plugin's own). */
  registry?: MetricsRegistry
  /** Prefix of every metric name (default 'lb_'). */
  prefix?: string
  /** Upper bounds of the latency histogram in seconds (default DEFAULT_BUCKETS). */
  buckets?: number[]
  /** onRequest hook(s) of the metrics route, to guard it. */
  onRequest?: RouteGuard | RouteGuard[]
}

export interface StatusOptions {
  /** Route of the status page, JSON or HTML (default '/lb/status'). */
  path?: string
  /** Leave target URLs out of the page (default false). */
  hideUrls?: boolean
  /** Seconds between reloads of the HTML view; 0 turns reloading off (default 5). */
  refreshSeconds?: number
  /** onRequest hook(s) of the status route, to guard it. */
  onRequest?: RouteGuard | RouteGuard[]
  /** The recent rates and latency per target that the page charts; false stops sampling (default `{}`). */
  history?: StatusHistoryOptions | false
}

export interface StatusHistoryOptions {
  /** Time between samples in ms (default 5000). */
  interval?: number
  /** Samples kept per series: the charts span interval x samples (default 60, so 5 minutes). */
  samples?: number
}

export interface ResolvedHistoryOptions {
  intervalMs: number
  samples: number
}

export interface ResolvedMetricsOptions {
  path: string | null
  registry: MetricsRegistry
  prefix: string
  buckets: readonly number[]
  onRequest: RouteGuard[]
}

export interface ResolvedStatusOptions {
  path: string
  hideUrls: boolean
  refreshSeconds: number
  onRequest: RouteGuard[]
  /** Null when sampling is off. */
  history: ResolvedHistoryOptions | null
}

/**
 * Latency buckets for a gateway: from sub-millisecond answers on a local network
 * to the default try timeout of 30 s.
 */
export const DEFAULT_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

const SCOPE = '(plugin)'
const METRICS_KEYS = new Set(['path', 'registry', 'prefix', 'buckets', 'onRequest'])
const STATUS_KEYS = new Set(['path', 'hideUrls', 'refreshSeconds', 'onRequest', 'history'])
const HISTORY_KEYS = new Set(['interval', 'samples'])
const PREFIX_PATTERN = /^([A-Za-z_:][A-Za-z0-9_:]*)?$/

const ROUTE_PATH = /^\/[^\s?#]*$/

function routePath (r: OptionReader, fallback: string): string {
  return r.matching('path', fallback, ROUTE_PATH, 'must be a route path starting with "/", without spaces, query or fragment')
}

function guard (at: OptionReader, key: OptionKey): RouteGuard {
  const hook = at.value(key)
  if (typeof hook !== 'function') at.fail(key, 'must be an onRequest hook function')
  return hook as RouteGuard
}

/** The `onRequest` guard(s) of a route's options: a hook or an array of them; [] when left out. */
export function readGuards (r: OptionReader): RouteGuard[] {
  return r.has('onRequest') ? r.oneOrMany('onRequest', guard) : []
}

/** Whether value is usable as a prom-client registry, also one from another copy of prom-client. */
function isRegistry (value: unknown): value is MetricsRegistry {
  if (value instanceof Registry) return true
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  return typeof r.registerMetric === 'function' && typeof r.metrics === 'function' &&
    typeof r.getSingleMetric === 'function' && typeof r.contentType === 'string'
}

function buckets (r: OptionReader): readonly number[] {
  const value = r.value('buckets')
  if (value === undefined) return DEFAULT_BUCKETS
  if (!Array.isArray(value) || value.length === 0 || value.length > 100) r.fail('buckets', 'must be an array of 1 to 100 upper bounds in seconds')
  const list: OptionReader = r.items('buckets', '')
  return list.map((i) => {
    const bound = list.value(i)
    if (typeof bound !== 'number' || !Number.isFinite(bound) || bound <= 0) list.fail(i, 'must be a positive number of seconds')
    if (i > 0 && bound <= (list.value(i - 1) as number)) list.fail(i, 'must be greater than the bound before it')
    return bound
  })
}

/** Validates the `metrics` plugin option; null when metrics are turned off. */
export function resolveMetricsOptions (value: unknown): ResolvedMetricsOptions | null {
  if (value === false) return null
  const r: OptionReader = OptionReader.record(SCOPE, 'metrics', value ?? {}, METRICS_KEYS, 'metrics', 'must be an object or false')
  const registry = r.value('registry') ?? new Registry()
  if (!isRegistry(registry)) r.fail('registry', 'must be a prom-client Registry', registry)
  const prefix = r.matching('prefix', 'lb_', PREFIX_PATTERN, 'must be a Prometheus metric name prefix ([A-Za-z_:][A-Za-z0-9_:]*)')
  return {
    path: r.value('path') === false ? null : routePath(r, '/metrics'),
    registry,
    prefix,
    buckets: buckets(r),
    onRequest: readGuards(r)
  }
}

function history (r: OptionReader): ResolvedHistoryOptions | null {
  if (r.value('history') === false) return null
  const h = r.object('history', { fallback: {}, shape: 'must be an object or false' }).known(HISTORY_KEYS, 'is not a status.history option')
  return {
    intervalMs: h.integer('interval', 5000, 50, 3_600_000),
    samples: h.integer('samples', 60, 2, 1440)
  }
}

/** Validates the `status` plugin option; null when the status route is turned off. */
export function resolveStatusOptions (value: unknown): ResolvedStatusOptions | null {
  if (value === false) return null
  const r = OptionReader.record(SCOPE, 'status', value ?? {}, STATUS_KEYS, 'status', 'must be an object or false')
  const hideUrls = r.boolean('hideUrls', false)
  const refreshSeconds = r.integer('refreshSeconds', 5, 0, 3600)
  return {
    path: routePath(r, '/lb/status'),
    hideUrls,
    refreshSeconds,
    onRequest: readGuards(r),
    history: history(r)
  }
}
