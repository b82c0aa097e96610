import type { FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { algorithms, traits, type AlgorithmName } from '../balancers/index'
import { DEFAULT_TABLE_SIZE, isPrime } from '../balancers/hash/maglev'
import { DEFAULT_POINTS_PER_WEIGHT } from '../balancers/hash/ring'
import { invalidOption } from '../errors'
import { isRecord } from './validate'
import { OptionReader } from './reader'
import { readTls, type ResolvedTls, type TlsOptions } from './tls'
import { resolveAffinity, type AffinityOptions, type ResolvedAffinity } from '../affinity/options'
import {
  resolveHealthCheck, resolveOutlierDetection, resolvePanicThreshold, resolveSlowStart,
  type HealthCheckOptions, type OutlierDetectionOptions, type ResolvedHealthCheck, type ResolvedOutlierDetection,
  type ResolvedSlowStart, type SlowStartOptions
} from '../health/options'
import {
  resolveMetricsOptions, resolveStatusOptions,
  type MetricsOptions, type ResolvedMetricsOptions, type ResolvedStatusOptions, type StatusOptions
} from '../observability/options'
import { resolveDiscovery, type DiscoveryOptions, type ResolvedDiscovery } from '../discovery/options'
import { resolveRewriteLocation } from '../forward/location-rewrite'
import { resolveFallback, type FallbackOptions, type ResolvedFallback } from '../forward/fallback-options'
import { resolveMirror, type MirrorOptions, type ResolvedMirror } from '../forward/mirror-options'
import { resolveCircuitBreaker, type CircuitBreakerOptions, type ResolvedCircuitBreaker } from '../breaker/options'
import { resolveCluster, type ClusterOptions, type ResolvedCluster } from '../cluster/options'
import { resolveAdminOptions, type AdminOptions, type ResolvedAdminOptions } from '../admin/options'

/** A target as configured: a URL, or a URL with a weight, an id, a connection limit and a tier. */
export type TargetInput = string | {
  url: string
  weight?: number
  id?: string
  /** Requests in flight to this target at most (nginx max_conns, HAProxy maxconn); 0 or absent: no limit. */
  maxConnections?: number
  /** A backup target: the same as `priority: 1`. */
  backup?: boolean
  /** Its tier: 0 serves first; a higher tier takes requests only while those before it cannot (default 0). */
  priority?: number
}

/** Where a hashing algorithm takes its key from. */
export type HashKeySource =
  | { header: string }
  | { cookie: string }
  | { query: string }
  | { param: string }
  | 'ip'
  | ((request: FastifyRequest) => string | undefined)

export interface RetryOptions {
  /** Retries after the first try for requests that reached an upstream (default 2). */
  attempts?: number
  /** Upstream statuses that trigger a retry of an idempotent request (default 502, 503, 504). */
  statuses?: number[]
  /** Methods that are safe to send twice (default GET, HEAD, OPTIONS, PUT, DELETE). */
  methods?: string[]
  /** Retries may add at most this share of the pool's requests over the last 10 s (default 0.2). */
  budgetPercent?: number
  /** Retries per second allowed whatever the traffic, so a quiet pool can retry too (default 10). */
  minRetriesPerSecond?: number
  /**
   * ms one request may take across all its tries and back-offs, from the moment its first try is sent to the
   * final answer's head (nginx's proxy_next_upstream_timeout, Envoy's route timeout); then 504. 0 or left out: none.
   */
  deadline?: number
  /**
   * Fully jittered exponential back-off before each retry of a request that reached an upstream (Envoy's): the n-th
   * waits a random time below min(max, base × (2^n − 1)) ms. Default { base: 25, max: 10 × base }; false or base 0: none.
   */
  backoff?: BackoffOptions | false
}

export interface BackoffOptions {
  /** ms; the first retry waits below this (default 25). */
  base?: number
  /** ms; no wait is longer (default 10 × base). */
  max?: number
}

export interface PoolOptions {
  /** The upstream targets. */
  targets?: TargetInput[]
  /** The balancing algorithm (default 'least-connections'). */
  algorithm?: AlgorithmName
  /** Key source for 'consistent-hash' and 'maglev' (default: the client address). */
  hashKey?: HashKeySource
  /** Algorithm for requests that have no hash key (default 'round-robin'). */
  hashFallback?: AlgorithmName
  /** Bounded-load factor for 'consistent-hash' (e.g. 1.25); 0 turns bounding off (default 0). */
  balanceFactor?: number
  /** Ring points per unit of weight for 'consistent-hash' and 'ip-hash' (default 160). */
  pointsPerWeight?: number
  /** Maglev table size, a prime (default 65537). */
  tableSize?: number
  /**
   * Time a single try may take from being sent (waiting for a connection included) to the upstream's final
   * headers, and between body chunks, in ms (default 30000). Informational (1xx) answers do not extend it.
   */
  timeout?: number
  /**
   * Time an answer being streamed may wait for a client that stops reading it, in ms (default 60000, as nginx's
   * send_timeout); then the client's connection is closed and the upstream's is freed.
   */
  sendTimeout?: number
  /** Set X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host on requests going upstream (default true). */
  forwardedHeaders?: boolean
  /**
   * Answers with a declared length up to this many bytes (and a content type) are read whole before they are
   * passed on; larger ones, and every answer with a body when 0, are streamed (default 65536).
   */
  bufferLimit?: number
  /** Retry policy; false turns retries of sent requests off (connect failures still fail over). */
  retry?: RetryOptions | false
  /** Signed-cookie session affinity (default: none). See docs/affinity.md. */
  affinity?: AffinityOptions
  /** Active health checks, one or a list that must all pass (default: none). See docs/health.md. */
  healthCheck?: HealthCheckOptions | readonly HealthCheckOptions[] | false
  /** Passive outlier detection from live traffic (default: none). See docs/health.md. */
  outlierDetection?: OutlierDetectionOptions | false
  /** Weight ramp for targets that join or recover (default: none). See docs/health.md. */
  slowStart?: SlowStartOptions | false
  /** Below this healthy share (0 to 1) the pool routes over all its targets (default 0: never). */
  panicThreshold?: number
  /** Providers whose target lists join `targets` and follow their source (default: none). See docs/discovery.md. */
  discovery?: DiscoveryOptions | DiscoveryOptions[]
  /** Requests in flight over the whole pool at most; 0 or absent: no limit. See docs/overload.md. */
  maxInFlight?: number
  /**
   * Where requests wait when every target is full: at most `size` of them, each at most `timeout` ms, served in
   * arrival order as slots free (default: none, a full pool answers 503 at once). See docs/overload.md.
   */
  queue?: { size: number, timeout?: number } | false
  /** What answers when the pool cannot: another pool, a static answer or a handler. See docs/overload.md. */
  fallback?: FallbackOptions
  /**
   * Envoy's overprovisioning factor for tiers: a tier whose healthy share is h takes min(1, h x factor) of the
   * traffic and the next tier the rest. Absent: a tier takes all of it while any of its targets can serve (nginx's backup).
   */
  overprovisioningFactor?: number
  /**
   * Rewrite `Location`, `Content-Location` and `Refresh` answer headers that name a target's URL (its origin and
   * base path) to the gateway's origin, as nginx's `proxy_redirect default` does (default true).
   */
  rewriteLocation?: boolean
  /** Per-pool circuit breaker: refuses requests at once while the pool's calls fail (default: none). See docs/circuit-breaker.md. */
  circuitBreaker?: CircuitBreakerOptions | false
  /**
   * ms a draining (or removed) target's open WebSocket tunnels may go on before they are closed, so drain() and
   * remove() end (default 30000). See docs/websocket.md.
   */
  drainTimeout?: number
  /** ms a WebSocket tunnel may carry nothing either way before it is closed (default 300000); 0: never. */
  tunnelIdleTimeout?: number
  /**
   * Speak HTTP/2 to the targets (default false): negotiated by ALPN with https targets, h2c with prior knowledge
   * with http ones. WebSocket upgrades still go over HTTP/1.1. See docs/websocket.md.
   */
  http2?: boolean
  /** Copies of the pool's requests to another pool, fire and forget (default: none). See docs/traffic.md. */
  mirror?: MirrorOptions | false
}

export interface LbOptions {
  /** Named pools, shared by every route that names them. */
  pools?: Record<string, PoolOptions>
  /** Time to establish a connection to an upstream, in ms (default 5000). */
  connectTimeout?: number
  /** TLS towards upstreams. Certificates are verified unless rejectUnauthorized is false. */
  tls?: TlsOptions
  /** Connections kept per upstream origin (default 128). */
  connections?: number
  /** Prometheus metrics and their route; false turns them off (default: on, at /metrics). See docs/observability.md. */
  metrics?: MetricsOptions | false
  /** The status page, JSON or HTML; false turns it off (default: on, at /lb/status). See docs/observability.md. */
  status?: StatusOptions | false
  /**
   * Cluster mode, in every node:cluster worker of the gateway: health checks once per machine, ejections shared,
   * one scrape for every worker (default false). The primary calls clusterPrimary(). See docs/cluster.md.
   */
  cluster?: boolean | ClusterOptions
  /**
   * The admin API: read every pool, change targets' weights and states, split weights and pool policies over HTTP
   * (default off). Needs an `onRequest` guard unless `allowUnguarded` is set. See docs/admin.md.
   */
  admin?: AdminOptions | false
}

export interface ResolvedTarget {
  id: string
  url: string
  origin: string
  basePath: string
  weight: number
  /** 0 for no limit. */
  maxConnections: number
  priority: number
}

export interface ResolvedQueue {
  size: number
  timeout: number
}

export interface ResolvedRetry {
  attempts: number
  statuses: ReadonlySet<number>
  methods: ReadonlySet<string>
  budgetPercent: number
  minRetriesPerSecond: number
  /** ms; 0 when requests have no deadline. */
  deadline: number
  /** null when retries go at once. */
  backoff: ResolvedBackoff | null
}

export interface ResolvedBackoff {
  base: number
  max: number
}

export interface ResolvedPoolOptions {
  name: string
  /** The options as given (a shallow copy): pool.configure() applies a change to them and resolves them again. */
  source: Readonly<Record<string, unknown>>
  targets: ResolvedTarget[]
  algorithm: AlgorithmName
  hashKey: HashKeySource
  hashFallback: AlgorithmName
  balanceFactor: number
  pointsPerWeight: number
  tableSize: number
  timeout: number
  sendTimeout: number
  forwardedHeaders: boolean
  bufferLimit: number
  retry: ResolvedRetry
  affinity: ResolvedAffinity | null
  /** Null when off; else every check a target must pass. */
  healthCheck: readonly ResolvedHealthCheck[] | null
  outlierDetection: ResolvedOutlierDetection | null
  slowStart: ResolvedSlowStart | null
  panicThreshold: number
  discovery: ResolvedDiscovery[]
  rewriteLocation: boolean
  /** 0 for no limit. */
  maxInFlight: number
  queue: ResolvedQueue | null
  fallback: ResolvedFallback | null
  /** Infinity for nginx's rule: a tier takes everything while any of its targets can serve. */
  overprovisioningFactor: number
  circuitBreaker: ResolvedCircuitBreaker | null
  drainTimeout: number
  /** 0: never. */
  tunnelIdleTimeout: number
  http2: boolean
  mirror: ResolvedMirror | null
}

export const DEFAULT_ALGORITHM: AlgorithmName = 'least-connections'
/** As much as nginx's default proxy_buffers hold (8 pages of 4 or 8 KiB). */
const DEFAULT_BUFFER_LIMIT = 64 * 1024
/** Every try in flight may hold this much: larger answers are better streamed. */
const MAX_BUFFER_LIMIT = 16 * 1024 * 1024
const ID_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/
const ID_RULE = 'must be 1 to 64 characters of A-Z a-z 0-9 . _ ~ -'
/**
 * The base path starts every request line sent to the target, and the URL is shown in logs and on the status
 * page: a longer one is a mistake (servers refuse request lines of some KiB), not a target.
 */
const MAX_URL_LENGTH = 2048
export const POOL_KEYS: ReadonlySet<string> = new Set(['targets', 'algorithm', 'hashKey', 'hashFallback', 'balanceFactor', 'pointsPerWeight', 'tableSize', 'timeout', 'sendTimeout', 'forwardedHeaders', 'bufferLimit', 'retry', 'affinity',
  'healthCheck', 'outlierDetection', 'slowStart', 'panicThreshold', 'discovery', 'rewriteLocation', 'maxInFlight', 'queue', 'fallback',
  'overprovisioningFactor', 'circuitBreaker', 'drainTimeout', 'tunnelIdleTimeout', 'http2', 'mirror'])

const ALGORITHMS = Object.keys(algorithms) as AlgorithmName[]

function readAlgorithm (r: OptionReader, key: string, fallback: AlgorithmName): AlgorithmName {
  return r.oneOf(key, fallback, ALGORITHMS, `must be one of ${ALGORITHMS.join(', ')}`)
}

/** A stable id that does not reveal the address: every replica derives the same one. */
export function deriveTargetId (url: string): string {
  return 't' + createHash('sha256').update(url).digest('hex').slice(0, 12)
}

const TARGET_KEYS = ['url', 'weight', 'id', 'maxConnections', 'backup', 'priority']
/** Limits on requests in flight: far above what one process can hold open, so a typo still fails. */
const MAX_LIMIT = 1_000_000
/** Tiers: enough for any chain of fallbacks anyone draws. */
const MAX_PRIORITY = 9

export function resolveTarget (pool: string, field: string, input: unknown): ResolvedTarget {
  const r = OptionReader.of(pool, field, typeof input === 'string' ? { url: input } : input, { shape: 'must be a URL string or { url, weight?, id? }' })
    .known(TARGET_KEYS, 'is not a target field')
  const raw = r.value('url')
  if (typeof raw === 'string' && raw.length > MAX_URL_LENGTH) {
    r.fail('url', `must be at most ${MAX_URL_LENGTH} characters long (it has ${raw.length})`)
  }
  let parsed: URL
  try {
    if (typeof raw !== 'string') throw new TypeError('not a string')
    parsed = new URL(raw)
  } catch {
    return r.fail('url', 'must be an absolute http(s) URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') r.fail('url', 'must use http or https')
  if (parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '') {
    r.fail('url', 'must not carry credentials, a query or a fragment')
  }
  if (parsed.port === '0') r.fail('url', 'must not use port 0, which no server can be reached on')
  const basePath = parsed.pathname.endsWith('/') ? parsed.pathname.slice(0, -1) : parsed.pathname
  const url = parsed.origin + basePath
  if (url.length > MAX_URL_LENGTH) r.fail('url', `must be at most ${MAX_URL_LENGTH} characters long, also once percent-encoded`)
  const weight = r.has('weight') ? r.weight('weight') : 1
  const id = r.has('id') ? r.matching('id', undefined, ID_PATTERN, ID_RULE) : deriveTargetId(url)
  const maxConnections = r.integer('maxConnections', 0, 0, MAX_LIMIT)
  const backup = r.boolean('backup', false)
  if (backup && r.has('priority')) r.fail('priority', 'must not be given with backup: true (a backup is priority 1)')
  const priority = backup ? 1 : r.integer('priority', 0, 0, MAX_PRIORITY)
  return { id, url, origin: parsed.origin, basePath, weight, maxConnections, priority }
}

/** A list of targets checked entry by entry: each against the rules, and against those before it for a repeated URL or id. */
export class TargetList {
  readonly targets: ResolvedTarget[] = []
  private readonly ids = new Set<string>()
  private readonly urls = new Set<string>()

  constructor (readonly pool: string) {}

  /** Checks entry `i` of the list; throws FST_LB_INVALID_OPTION naming it. */
  add (i: number, input: unknown): void {
    const target = resolveTarget(this.pool, `targets[${i}]`, input)
    if (this.urls.has(target.url)) throw invalidOption(this.pool, `targets[${i}].url`, target.url, 'duplicates another target')
    if (this.ids.has(target.id)) throw invalidOption(this.pool, `targets[${i}].id`, target.id, 'duplicates another target id')
    this.urls.add(target.url)
    this.ids.add(target.id)
    this.targets.push(target)
  }
}

export function resolveTargets (pool: string, value: unknown): ResolvedTarget[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw invalidOption(pool, 'targets', value, 'must be an array')
  const list = new TargetList(pool)
  for (let i = 0; i < value.length; i++) list.add(i, value[i])
  return list.targets
}

const HASH_SOURCES: readonly string[] = ['header', 'cookie', 'query', 'param']

/** Where a request's key is read (a pool's `hashKey`, a split's `stick`): 'ip' when left out. */
export function resolveKeySource (r: OptionReader, key: string): HashKeySource {
  const value = r.value(key)
  if (value === undefined || value === 'ip') return 'ip'
  if (typeof value === 'function') return value as HashKeySource
  if (isRecord(value)) {
    const keys = Object.keys(value)
    const source = keys[0]
    if (keys.length === 1 && HASH_SOURCES.includes(source)) {
      const name = r.object(key).string(source)
      return source === 'header' ? { header: name.toLowerCase() } : { [source]: name } as HashKeySource
    }
  }
  return r.fail(key, "must be 'ip', { header }, { cookie }, { query }, { param } or a function")
}

const RETRY_KEYS = new Set(['attempts', 'statuses', 'methods', 'budgetPercent', 'minRetriesPerSecond', 'deadline', 'backoff'])
const BACKOFF_KEYS = new Set(['base', 'max'])
const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']
/** Envoy's base interval: short enough to be unnoticed by one retry, long enough to spread a burst of them. */
const DEFAULT_BACKOFF_BASE = 25
/** A back-off holds a client's request: longer than a minute is a mistake, not a policy. */
const MAX_BACKOFF = 60_000

function resolveBackoff (r: OptionReader): ResolvedBackoff | null {
  if (r.value('backoff') === false) return null
  const b = r.object('backoff', { fallback: {}, shape: 'must be an object or false' }).known(BACKOFF_KEYS, 'is not a retry.backoff option')
  const base = b.integer('base', DEFAULT_BACKOFF_BASE, 0, MAX_BACKOFF)
  if (base === 0) return null
  // Envoy's default: 10 × base lets a third retry wait up to 7 × base and caps everything after.
  const max = b.integer('max', Math.min(10 * base, MAX_BACKOFF), base, MAX_BACKOFF, `must be an integer from retry.backoff.base (${base}) to ${MAX_BACKOFF}`)
  return { base, max }
}

function resolveRetry (pool: string, value: unknown): ResolvedRetry {
  const off = value === false
  const r = OptionReader.record(pool, 'retry', value === undefined || off ? {} : value, RETRY_KEYS, 'retry', 'must be an object or false')
  const attempts = off ? 0 : r.integer('attempts', 2, 0, 10)
  const statusList = r.items('statuses', 'must be an array of HTTP statuses', [502, 503, 504])
  const statuses = statusList.map((i) => statusList.integer(i, undefined, 500, 599))
  const methodList = r.items('methods', 'must be an array of method names', IDEMPOTENT)
  return {
    attempts,
    statuses: new Set(statuses),
    methods: new Set(methodList.map((i) => methodList.method(i))),
    budgetPercent: r.number('budgetPercent', 0.2, 0, 1),
    minRetriesPerSecond: r.number('minRetriesPerSecond', 10, 0, 1_000_000),
    deadline: r.integer('deadline', 0, 0, 3_600_000),
    backoff: resolveBackoff(r)
  }
}

const QUEUE_KEYS = new Set(['size', 'timeout'])

function resolveQueue (pool: string, value: unknown): ResolvedQueue | null {
  if (value === undefined || value === null || value === false) return null
  const r = OptionReader.record(pool, 'queue', value, QUEUE_KEYS, 'queue', 'must be { size, timeout? } or false')
  return { size: r.integer('size', undefined, 1, MAX_LIMIT), timeout: r.integer('timeout', 5000, 1, 3_600_000) }
}

/** Validates one pool's options and fills in the defaults. Throws FST_LB_INVALID_OPTION. */
export function resolvePoolOptions (name: string, input: unknown): ResolvedPoolOptions {
  const r = OptionReader.record(name, '(pool)', input, POOL_KEYS, 'pool', 'must be an object of pool options')
  const algorithm = readAlgorithm(r, 'algorithm', DEFAULT_ALGORITHM)
  const hashFallback = readAlgorithm(r, 'hashFallback', 'round-robin')
  if (traits[hashFallback].hashKey) r.fail('hashFallback', 'must not itself need a hash key', hashFallback)
  const tableSize = r.integer('tableSize', DEFAULT_TABLE_SIZE, 1, 10_000_019)
  if (!isPrime(tableSize)) r.fail('tableSize', 'must be a prime number', tableSize)
  // 0 turns bounding off, so it is allowed below the range of a bounding factor.
  const balanceFactor = (r.value('balanceFactor') ?? 0) === 0 ? 0 : r.number('balanceFactor', undefined, 1, 100)
  return {
    name,
    source: { ...r.spec },
    targets: resolveTargets(name, r.value('targets')),
    algorithm,
    hashKey: resolveKeySource(r, 'hashKey'),
    hashFallback,
    balanceFactor,
    pointsPerWeight: r.integer('pointsPerWeight', DEFAULT_POINTS_PER_WEIGHT, 1, 10_000),
    tableSize,
    timeout: r.integer('timeout', 30_000, 1, 3_600_000),
    sendTimeout: r.integer('sendTimeout', 60_000, 1, 3_600_000),
    forwardedHeaders: r.optionalBoolean('forwardedHeaders') ?? true,
    bufferLimit: r.integer('bufferLimit', DEFAULT_BUFFER_LIMIT, 0, MAX_BUFFER_LIMIT),
    retry: resolveRetry(name, r.value('retry')),
    affinity: resolveAffinity(name, r.value('affinity')),
    healthCheck: resolveHealthCheck(r),
    outlierDetection: resolveOutlierDetection(name, r.value('outlierDetection')),
    slowStart: resolveSlowStart(name, r.value('slowStart')),
    panicThreshold: resolvePanicThreshold(r),
    discovery: resolveDiscovery(name, r.value('discovery')),
    rewriteLocation: resolveRewriteLocation(name, r.value('rewriteLocation')),
    maxInFlight: r.integer('maxInFlight', 0, 0, MAX_LIMIT),
    queue: resolveQueue(name, r.value('queue')),
    fallback: resolveFallback(name, r.value('fallback')),
    overprovisioningFactor: r.has('overprovisioningFactor') ? r.number('overprovisioningFactor', undefined, 1, 100) : Infinity,
    circuitBreaker: resolveCircuitBreaker(name, r.value('circuitBreaker')),
    drainTimeout: r.integer('drainTimeout', 30_000, 0, 86_400_000),
    tunnelIdleTimeout: r.integer('tunnelIdleTimeout', 300_000, 0, 86_400_000),
    http2: r.optionalBoolean('http2') ?? false,
    mirror: resolveMirror(name, r.value('mirror'))
  }
}

export interface ResolvedLbOptions {
  pools: Map<string, ResolvedPoolOptions>
  connectTimeout: number
  tls: ResolvedTls
  connections: number
  metrics: ResolvedMetricsOptions | null
  status: ResolvedStatusOptions | null
  /** Null when off. */
  cluster: ResolvedCluster | null
  /** Null when off. */
  admin: ResolvedAdminOptions | null
}

const TOP_KEYS = new Set(['pools', 'connectTimeout', 'tls', 'connections', 'metrics', 'status', 'cluster', 'admin'])

/** Validates the plugin options; pool errors name the pool, global ones the pseudo-pool "(plugin)". */
export function resolveOptions (value: unknown): ResolvedLbOptions {
  const r = OptionReader.record('(plugin)', '(options)', value ?? {}, TOP_KEYS, 'plugin')
  const pools = new Map<string, ResolvedPoolOptions>()
  const rawPools = r.object('pools', { fallback: {}, shape: 'must be an object of named pools' })
  for (const [name, spec] of Object.entries(rawPools.spec)) {
    pools.set(name, resolvePoolOptions(name, spec))
  }
  const tls = readTls(r.object('tls', { fallback: {} }), false)
  const cluster = resolveCluster(r.value('cluster'))
  const admin = resolveAdminOptions(r.value('admin'))
  // Runtime changes apply in the worker that makes them (docs/cluster.md): a call would change one worker of many.
  if (admin !== null && cluster !== null) r.fail('admin', 'is not available in cluster mode: a call would change only the worker that took it')
  return {
    pools,
    connectTimeout: r.integer('connectTimeout', 5000, 1, 600_000),
    tls,
    connections: r.integer('connections', 128, 1, 100_000),
    metrics: resolveMetricsOptions(r.value('metrics')),
    status: resolveStatusOptions(r.value('status')),
    cluster,
    admin
  }
}
