import type { FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { algorithms, traits, type AlgorithmName } from '../balancers/index'
import { DEFAULT_TABLE_SIZE, isPrime } from '../balancers/hash/maglev'
import { DEFAULT_POINTS_PER_WEIGHT } from '../balancers/hash/ring'
import { invalidOption } from '../errors'
import { checkBoolean, checkInteger, checkNumber, checkRecord, checkWeight, isRecord } from './validate'
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
}

export interface LbOptions {
  /** Named pools, shared by every route that names them. */
  pools?: Record<string, PoolOptions>
  /** Time to establish a connection to an upstream, in ms (default 5000). */
  connectTimeout?: number
  /** TLS towards upstreams. Certificates are verified unless rejectUnauthorized is false. */
  tls?: { rejectUnauthorized?: boolean, ca?: string | Buffer | Array<string | Buffer>, servername?: string }
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
}

export const DEFAULT_ALGORITHM: AlgorithmName = 'least-connections'
/** As much as nginx's default proxy_buffers hold (8 pages of 4 or 8 KiB). */
const DEFAULT_BUFFER_LIMIT = 64 * 1024
/** Every try in flight may hold this much: larger answers are better streamed. */
const MAX_BUFFER_LIMIT = 16 * 1024 * 1024
const ID_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/
/**
 * The base path starts every request line sent to the target, and the URL is shown in logs and on the status
 * page: a longer one is a mistake (servers refuse request lines of some KiB), not a target.
 */
const MAX_URL_LENGTH = 2048
const POOL_KEYS = new Set(['targets', 'algorithm', 'hashKey', 'hashFallback', 'balanceFactor', 'pointsPerWeight', 'tableSize', 'timeout', 'sendTimeout', 'forwardedHeaders', 'bufferLimit', 'retry', 'affinity',
  'healthCheck', 'outlierDetection', 'slowStart', 'panicThreshold', 'discovery', 'rewriteLocation'])

function checkAlgorithm (pool: string, field: string, value: unknown): AlgorithmName {
  if (typeof value !== 'string' || !Object.hasOwn(algorithms, value)) {
    throw invalidOption(pool, field, value, `must be one of ${Object.keys(algorithms).join(', ')}`)
  }
  return value as AlgorithmName
}

/** A stable id that does not reveal the address: every replica derives the same one. */
export function deriveTargetId (url: string): string {
  return 't' + createHash('sha256').update(url).digest('hex').slice(0, 12)
}

export function resolveTarget (pool: string, field: string, input: unknown): ResolvedTarget {
  const spec = typeof input === 'string' ? { url: input } : input
  if (!isRecord(spec)) throw invalidOption(pool, field, input, 'must be a URL string or { url, weight?, id? }')
  for (const key of Object.keys(spec)) {
    if (key !== 'url' && key !== 'weight' && key !== 'id') throw invalidOption(pool, `${field}.${key}`, spec[key], 'is not a target field')
  }
  const raw = spec.url
  if (typeof raw === 'string' && raw.length > MAX_URL_LENGTH) {
    throw invalidOption(pool, `${field}.url`, raw, `must be at most ${MAX_URL_LENGTH} characters long (it has ${raw.length})`)
  }
  let parsed: URL
  try {
    if (typeof raw !== 'string') throw new TypeError('not a string')
    parsed = new URL(raw)
  } catch {
    throw invalidOption(pool, `${field}.url`, raw, 'must be an absolute http(s) URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalidOption(pool, `${field}.url`, raw, 'must use http or https')
  }
  if (parsed.username !== '' || parsed.password !== '' || parsed.search !== '' || parsed.hash !== '') {
    throw invalidOption(pool, `${field}.url`, raw, 'must not carry credentials, a query or a fragment')
  }
  if (parsed.port === '0') throw invalidOption(pool, `${field}.url`, raw, 'must not use port 0, which no server can be reached on')
  const basePath = parsed.pathname.endsWith('/') ? parsed.pathname.slice(0, -1) : parsed.pathname
  const url = parsed.origin + basePath
  if (url.length > MAX_URL_LENGTH) {
    throw invalidOption(pool, `${field}.url`, raw, `must be at most ${MAX_URL_LENGTH} characters long, also once percent-encoded`)
  }
  const weight = checkWeight(pool, `${field}.weight`, spec.weight === undefined ? 1 : spec.weight)
  const id = spec.id === undefined ? deriveTargetId(url) : spec.id
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw invalidOption(pool, `${field}.id`, id, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ ~ -')
  }
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

function resolveHashKey (pool: string, value: unknown): HashKeySource {
  if (value === undefined || value === 'ip') return 'ip'
  if (typeof value === 'function') return value as HashKeySource
  if (isRecord(value)) {
    const keys = Object.keys(value)
    const source = keys[0]
    if (keys.length === 1 && (source === 'header' || source === 'cookie' || source === 'query' || source === 'param')) {
      const name = value[source]
      if (typeof name === 'string' && name.length > 0) {
        return source === 'header' ? { header: name.toLowerCase() } : { [source]: name } as HashKeySource
      }
      throw invalidOption(pool, `hashKey.${source}`, name, 'must be a non-empty string')
    }
  }
  throw invalidOption(pool, 'hashKey', value, "must be 'ip', { header }, { cookie }, { query }, { param } or a function")
}

const RETRY_KEYS = new Set(['attempts', 'statuses', 'methods', 'budgetPercent', 'minRetriesPerSecond'])
const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']

function resolveRetry (pool: string, value: unknown): ResolvedRetry {
  const off = value === false
  const spec = (value === undefined || off ? {} : value) as Record<string, unknown>
  checkRecord(pool, 'retry', spec, RETRY_KEYS, 'retry', 'must be an object or false')
  const attempts = off ? 0 : checkInteger(pool, 'retry.attempts', spec.attempts ?? 2, 0, 10)
  const statuses = spec.statuses ?? [502, 503, 504]
  if (!Array.isArray(statuses)) throw invalidOption(pool, 'retry.statuses', statuses, 'must be an array of HTTP statuses')
  statuses.forEach((s, i) => checkInteger(pool, `retry.statuses[${i}]`, s, 500, 599))
  const methods = spec.methods ?? IDEMPOTENT
  if (!Array.isArray(methods)) throw invalidOption(pool, 'retry.methods', methods, 'must be an array of method names')
  methods.forEach((m, i) => {
    if (typeof m !== 'string' || !/^[A-Za-z]+$/.test(m)) throw invalidOption(pool, `retry.methods[${i}]`, m, 'must be a method name')
  })
  return {
    attempts,
    statuses: new Set(statuses as number[]),
    methods: new Set((methods as string[]).map((m) => m.toUpperCase())),
    budgetPercent: checkNumber(pool, 'retry.budgetPercent', spec.budgetPercent ?? 0.2, 0, 1),
    minRetriesPerSecond: checkNumber(pool, 'retry.minRetriesPerSecond', spec.minRetriesPerSecond ?? 10, 0, 1_000_000)
  }
}

/** Validates one pool's options and fills in the defaults. Throws FST_LB_INVALID_OPTION. */
export function resolvePoolOptions (name: string, input: unknown): ResolvedPoolOptions {
  const value = checkRecord(name, '(pool)', input, POOL_KEYS, 'pool', 'must be an object of pool options')
  const algorithm = checkAlgorithm(name, 'algorithm', value.algorithm ?? DEFAULT_ALGORITHM)
  const hashFallback = checkAlgorithm(name, 'hashFallback', value.hashFallback ?? 'round-robin')
  if (traits[hashFallback].hashKey) throw invalidOption(name, 'hashFallback', hashFallback, 'must not itself need a hash key')
  const tableSize = checkInteger(name, 'tableSize', value.tableSize ?? DEFAULT_TABLE_SIZE, 1, 10_000_019)
  if (!isPrime(tableSize)) throw invalidOption(name, 'tableSize', tableSize, 'must be a prime number')
  const balanceFactor = value.balanceFactor ?? 0
  if (balanceFactor !== 0) checkNumber(name, 'balanceFactor', balanceFactor, 1, 100)
  return {
    name,
    targets: resolveTargets(name, value.targets),
    algorithm,
    hashKey: resolveHashKey(name, value.hashKey),
    hashFallback,
    balanceFactor: balanceFactor as number,
    pointsPerWeight: checkInteger(name, 'pointsPerWeight', value.pointsPerWeight ?? DEFAULT_POINTS_PER_WEIGHT, 1, 10_000),
    tableSize,
    timeout: checkInteger(name, 'timeout', value.timeout ?? 30_000, 1, 3_600_000),
    sendTimeout: checkInteger(name, 'sendTimeout', value.sendTimeout ?? 60_000, 1, 3_600_000),
    forwardedHeaders: checkBoolean(name, 'forwardedHeaders', value.forwardedHeaders, true),
    bufferLimit: checkInteger(name, 'bufferLimit', value.bufferLimit ?? DEFAULT_BUFFER_LIMIT, 0, MAX_BUFFER_LIMIT),
    retry: resolveRetry(name, value.retry),
    affinity: resolveAffinity(name, value.affinity),
    healthCheck: resolveHealthCheck(name, value.healthCheck),
    outlierDetection: resolveOutlierDetection(name, value.outlierDetection),
    slowStart: resolveSlowStart(name, value.slowStart),
    panicThreshold: resolvePanicThreshold(name, value.panicThreshold),
    discovery: resolveDiscovery(name, value.discovery),
    rewriteLocation: resolveRewriteLocation(name, value.rewriteLocation)
  }
}

export interface ResolvedLbOptions {
  pools: Map<string, ResolvedPoolOptions>
  connectTimeout: number
  tls: { rejectUnauthorized: boolean, ca?: string | Buffer | Array<string | Buffer>, servername?: string }
  connections: number
  metrics: ResolvedMetricsOptions | null
  status: ResolvedStatusOptions | null
}

const TOP_KEYS = new Set(['pools', 'connectTimeout', 'tls', 'connections', 'metrics', 'status'])

/** Validates the plugin options; pool errors name the pool, global ones the pseudo-pool "(plugin)". */
export function resolveOptions (value: unknown): ResolvedLbOptions {
  const scope = '(plugin)'
  const opts = checkRecord(scope, '(options)', value ?? {}, TOP_KEYS, 'plugin')
  const pools = new Map<string, ResolvedPoolOptions>()
  const rawPools = opts.pools ?? {}
  if (!isRecord(rawPools)) throw invalidOption(scope, 'pools', rawPools, 'must be an object of named pools')
  for (const [name, spec] of Object.entries(rawPools)) {
    pools.set(name, resolvePoolOptions(name, spec))
  }
  const tls = opts.tls ?? {}
  if (!isRecord(tls)) throw invalidOption(scope, 'tls', tls, 'must be an object')
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') {
    throw invalidOption(scope, 'tls.rejectUnauthorized', tls.rejectUnauthorized, 'must be a boolean')
  }
  return {
    pools,
    connectTimeout: checkInteger(scope, 'connectTimeout', opts.connectTimeout ?? 5000, 1, 600_000),
    tls: {
      rejectUnauthorized: tls.rejectUnauthorized !== false,
      ca: tls.ca as ResolvedLbOptions['tls']['ca'],
      servername: typeof tls.servername === 'string' ? tls.servername : undefined
    },
    connections: checkInteger(scope, 'connections', opts.connections ?? 128, 1, 100_000),
    metrics: resolveMetricsOptions(opts.metrics),
    status: resolveStatusOptions(opts.status)
  }
}
