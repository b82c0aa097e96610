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
import { resolveCircuitBreaker, type CircuitBreakerOptions, type ResolvedCircuitBreaker } from '../breaker/options'

/** A target as configured: a URL, or a URL with a weight and an id. */
export type TargetInput = string | { url: string, weight?: number, id?: string }

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
  /** Active health checks (default: none). See docs/health.md. */
  healthCheck?: HealthCheckOptions | false
  /** Passive outlier detection from live traffic (default: none). See docs/health.md. */
  outlierDetection?: OutlierDetectionOptions | false
  /** Weight ramp for targets that join or recover (default: none). See docs/health.md. */
  slowStart?: SlowStartOptions | false
  /** Below this healthy share (0 to 1) the pool routes over all its targets (default 0: never). */
  panicThreshold?: number
  /** Providers whose target lists join `targets` and follow their source (default: none). See docs/discovery.md. */
  discovery?: DiscoveryOptions | DiscoveryOptions[]
  /**
   * Rewrite `Location`, `Content-Location` and `Refresh` answer headers that name a target's URL (its origin and
   * base path) to the gateway's origin, as nginx's `proxy_redirect default` does (default true).
   */
  rewriteLocation?: boolean
  /** Per-pool circuit breaker: refuses requests at once while the pool's calls fail (default: none). See docs/circuit-breaker.md. */
  circuitBreaker?: CircuitBreakerOptions | false
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
}

export interface ResolvedTarget {
  id: string
  url: string
  origin: string
  basePath: string
  weight: number
}

export interface ResolvedRetry {
  attempts: number
  statuses: ReadonlySet<number>
  methods: ReadonlySet<string>
  budgetPercent: number
  minRetriesPerSecond: number
}

export interface ResolvedPoolOptions {
  name: string
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
  healthCheck: ResolvedHealthCheck | null
  outlierDetection: ResolvedOutlierDetection | null
  slowStart: ResolvedSlowStart | null
  panicThreshold: number
  discovery: ResolvedDiscovery[]
  rewriteLocation: boolean
  circuitBreaker: ResolvedCircuitBreaker | null
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
const POOL_KEYS = new Set(['targets', 'algorithm', 'hashKey', 'hashFallback', 'balanceFactor', 'pointsPerWeight', 'tableSize', 'timeout', 'sendTimeout', 'forwardedHeaders', 'bufferLimit', 'retry', 'affinity',
  'healthCheck', 'outlierDetection', 'slowStart', 'panicThreshold', 'discovery', 'rewriteLocation', 'circuitBreaker'])

const ALGORITHMS = Object.keys(algorithms) as AlgorithmName[]

function readAlgorithm (r: OptionReader, key: string, fallback: AlgorithmName): AlgorithmName {
  return r.oneOf(key, fallback, ALGORITHMS, `must be one of ${ALGORITHMS.join(', ')}`)
}

/** A stable id that does not reveal the address: every replica derives the same one. */
export function deriveTargetId (url: string): string {
  return 't' + createHash('sha256').update(url).digest('hex').slice(0, 12)
}

const TARGET_KEYS = ['url', 'weight', 'id']

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
  return { id, url, origin: parsed.origin, basePath, weight }
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

function resolveHashKey (r: OptionReader): HashKeySource {
  const value = r.value('hashKey')
  if (value === undefined || value === 'ip') return 'ip'
  if (typeof value === 'function') return value as HashKeySource
  if (isRecord(value)) {
    const keys = Object.keys(value)
    const source = keys[0]
    if (keys.length === 1 && HASH_SOURCES.includes(source)) {
      const name = r.object('hashKey').string(source)
      return source === 'header' ? { header: name.toLowerCase() } : { [source]: name } as HashKeySource
    }
  }
  return r.fail('hashKey', "must be 'ip', { header }, { cookie }, { query }, { param } or a function")
}

const RETRY_KEYS = new Set(['attempts', 'statuses', 'methods', 'budgetPercent', 'minRetriesPerSecond'])
const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']

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
    minRetriesPerSecond: r.number('minRetriesPerSecond', 10, 0, 1_000_000)
  }
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
    targets: resolveTargets(name, r.value('targets')),
    algorithm,
    hashKey: resolveHashKey(r),
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
    healthCheck: resolveHealthCheck(name, r.value('healthCheck')),
    outlierDetection: resolveOutlierDetection(name, r.value('outlierDetection')),
    slowStart: resolveSlowStart(name, r.value('slowStart')),
    panicThreshold: resolvePanicThreshold(r),
    discovery: resolveDiscovery(name, r.value('discovery')),
    rewriteLocation: resolveRewriteLocation(name, r.value('rewriteLocation')),
    circuitBreaker: resolveCircuitBreaker(name, r.value('circuitBreaker'))
  }
}

export interface ResolvedLbOptions {
  pools: Map<string, ResolvedPoolOptions>
  connectTimeout: number
  tls: ResolvedTls
  connections: number
  metrics: ResolvedMetricsOptions | null
  status: ResolvedStatusOptions | null
}

const TOP_KEYS = new Set(['pools', 'connectTimeout', 'tls', 'connections', 'metrics', 'status'])

/** Validates the plugin options; pool errors name the pool, global ones the pseudo-pool "(plugin)". */
export function resolveOptions (value: unknown): ResolvedLbOptions {
  const r = OptionReader.record('(plugin)', '(options)', value ?? {}, TOP_KEYS, 'plugin')
  const pools = new Map<string, ResolvedPoolOptions>()
  const rawPools = r.object('pools', { fallback: {}, shape: 'must be an object of named pools' })
  for (const [name, spec] of Object.entries(rawPools.spec)) {
    pools.set(name, resolvePoolOptions(name, spec))
  }
  const tls = readTls(r.object('tls', { fallback: {} }), false)
  return {
    pools,
    connectTimeout: r.integer('connectTimeout', 5000, 1, 600_000),
    tls,
    connections: r.integer('connections', 128, 1, 100_000),
    metrics: resolveMetricsOptions(r.value('metrics')),
    status: resolveStatusOptions(r.value('status'))
  }
}
