import { createPrivateKey, X509Certificate } from 'node:crypto'
import { Resolver } from 'node:dns/promises'
import { invalidOption } from '../errors'
import { checkInteger, isRecord } from '../options/validate'

/** What a DNS or Consul provider does with an answer that lists no target. */
export type OnEmpty = 'keep' | 'remove'

/** A JSON file holding an array of targets (the same shape as the `targets` option), watched for changes. */
export interface FileDiscoveryOptions {
  type: 'file'
  /** Path of the JSON file; relative paths resolve from the process's working directory. */
  path: string
  /** Quiet time after a change before the file is read, in ms (default 50). */
  debounce?: number
  /** Also compare the file's size and modification time this often, in ms, for file systems without change events; 0 turns it off (default 5000). */
  interval?: number
}

/** DNS: SRV records (host, port, weight), or A/AAAA records with a configured port. */
export interface DnsDiscoveryOptions {
  type: 'dns'
  /** The name to resolve, e.g. '_http._tcp.users.service.consul' (SRV) or 'users.default.svc.cluster.local' (A). */
  name: string
  /** Record type (default 'SRV'). */
  record?: 'SRV' | 'A' | 'AAAA'
  /** The targets' port for A/AAAA records (required for them; SRV records carry their own). */
  port?: number
  /** Scheme of the target URLs (default 'http'). */
  scheme?: 'http' | 'https'
  /** DNS servers to ask, 'address' or 'address:port' (e.g. '127.0.0.1:8600'); default: the system's. */
  resolver?: string | string[]
  /** Longest time between lookups, in ms; also used when a TTL is not known (default 30000). */
  interval?: number
  /** Shortest time between lookups whatever the TTL says, and the first retry after a failure, in ms (default 1000). */
  minInterval?: number
  /** Time one query may take, in ms (default 2000). */
  timeout?: number
  /** Queries sent to each server before a lookup fails (default 2). */
  tries?: number
  /** An answer without records: keep the last list ('keep', default) or remove every target ('remove'). */
  onEmpty?: OnEmpty
}

/** A PEM certificate, key or CA bundle: its contents (not a file's path), as a string or a Buffer. */
export type Pem = string | Buffer

/** TLS towards a registry reached over https. Its certificate is verified unless rejectUnauthorized is false. */
export interface RegistryTlsOptions {
  /** CA certificate(s) to trust instead of Node's bundled ones (PEM). */
  ca?: Pem | Pem[]
  /** Verify the registry's certificate (default true). */
  rejectUnauthorized?: boolean
  /** The name the registry's certificate must carry, when it is not the URL's host. */
  servername?: string
}

/** TLS towards etcd: a registry's, plus a client certificate for etcd's `--client-cert-auth`. */
export interface EtcdTlsOptions extends RegistryTlsOptions {
  /** Client certificate (PEM); requires `key`. */
  cert?: Pem
  /** The client certificate's private key (PEM, not encrypted); requires `cert`. */
  key?: Pem
}

/** Consul's health API, followed with blocking queries. */
export interface ConsulDiscoveryOptions {
  type: 'consul'
  /** The Consul agent or server (default 'http://127.0.0.1:8500'). */
  url?: string
  /** The service name. */
  service: string
  /** ACL token, sent as X-Consul-Token. */
  token?: string
  /** Datacenter (default: the agent's). */
  dc?: string
  /** Only instances carrying every one of these tags. */
  tag?: string | string[]
  /** Longest time a blocking query waits for a change, in ms (default 60000; Consul caps it at 600000). */
  wait?: number
  /** Take the weight from this Service.Meta key instead of Service.Weights.Passing. */
  weightMeta?: string
  /** Scheme of the target URLs (default 'http'). */
  scheme?: 'http' | 'https'
  /** First retry after a failed query, in ms; it doubles on each failure (default 1000). */
  retryInterval?: number
  /** Longest time between retries, in ms (default 30000). */
  maxRetryInterval?: number
  /** Time to wait for an answer beyond the blocking wait, in ms (default 10000). */
  timeout?: number
  /** An answer without passing instances: keep the last list ('keep', default) or remove every target ('remove'). */
  onEmpty?: OnEmpty
  /** TLS towards an https `url`. */
  tls?: RegistryTlsOptions
}

/** etcd v3: targets as JSON values under a key prefix, followed with a watch (through etcd's HTTP/JSON gateway). */
export interface EtcdDiscoveryOptions {
  type: 'etcd'
  /** Client URL(s) of the cluster; tried in turn after a failure (default 'http://127.0.0.1:2379'). */
  url?: string | string[]
  /** The key prefix, e.g. '/services/users/'. Each key under it holds one target. */
  prefix: string
  /** Time a range request may take, in ms (default 5000). */
  timeout?: number
  /** First retry after a lost connection, in ms; it doubles on each failure (default 1000). */
  retryInterval?: number
  /** Longest time between retries, in ms (default 30000). */
  maxRetryInterval?: number
  /** etcd user to authenticate as (requires `password`); the token etcd gives is renewed when etcd refuses it. */
  username?: string
  /** The user's password (requires `username`). Never logged. */
  password?: string
  /** TLS towards https `url`s, with an optional client certificate. */
  tls?: EtcdTlsOptions
}

export type DiscoveryOptions = FileDiscoveryOptions | DnsDiscoveryOptions | ConsulDiscoveryOptions | EtcdDiscoveryOptions

export interface ResolvedFileDiscovery {
  type: 'file'
  path: string
  debounce: number
  interval: number
}

export interface ResolvedDnsDiscovery {
  type: 'dns'
  name: string
  record: 'SRV' | 'A' | 'AAAA'
  port: number
  scheme: 'http' | 'https'
  resolver: string[]
  interval: number
  minInterval: number
  timeout: number
  tries: number
  onEmpty: OnEmpty
}

/** TLS options for a provider's undici Agent (its `connect` options). */
export interface ResolvedRegistryTls {
  ca?: Pem | Pem[]
  cert?: Pem
  key?: Pem
  rejectUnauthorized: boolean
  servername?: string
}

export interface ResolvedConsulDiscovery {
  type: 'consul'
  url: string
  service: string
  token: string | undefined
  dc: string | undefined
  tags: string[]
  wait: number
  weightMeta: string | undefined
  scheme: 'http' | 'https'
  retryInterval: number
  maxRetryInterval: number
  timeout: number
  onEmpty: OnEmpty
  tls: ResolvedRegistryTls | undefined
}

export interface EtcdCredentials {
  username: string
  password: string
}

export interface ResolvedEtcdDiscovery {
  type: 'etcd'
  urls: string[]
  prefix: string
  timeout: number
  retryInterval: number
  maxRetryInterval: number
  credentials: EtcdCredentials | undefined
  tls: ResolvedRegistryTls | undefined
}

export type ResolvedDiscovery = ResolvedFileDiscovery | ResolvedDnsDiscovery | ResolvedConsulDiscovery | ResolvedEtcdDiscovery

const KEYS: Record<DiscoveryOptions['type'], readonly string[]> = {
  file: ['type', 'path', 'debounce', 'interval'],
  dns: ['type', 'name', 'record', 'port', 'scheme', 'resolver', 'interval', 'minInterval', 'timeout', 'tries', 'onEmpty'],
  consul: ['type', 'url', 'service', 'token', 'dc', 'tag', 'wait', 'weightMeta', 'scheme', 'retryInterval', 'maxRetryInterval', 'timeout', 'onEmpty', 'tls'],
  etcd: ['type', 'url', 'prefix', 'timeout', 'retryInterval', 'maxRetryInterval', 'username', 'password', 'tls']
}

/** Options whose values are secret, or hold secrets: messages show only their type and length. */
const SECRET_KEYS = new Set(['token', 'password', 'tls', 'key'])

const TLS_KEYS: Record<'consul' | 'etcd', readonly string[]> = {
  consul: ['ca', 'rejectUnauthorized', 'servername'],
  etcd: ['ca', 'cert', 'key', 'rejectUnauthorized', 'servername']
}

/**
 * How a secret (a password, a private key) or a PEM blob appears in an error
 * message: its type and length, never its contents.
 */
function shapeOf (value: unknown): unknown {
  if (value === undefined) return undefined
  if (typeof value === 'string') return `<${value.length} character${value.length === 1 ? '' : 's'}>`
  if (Buffer.isBuffer(value)) return `<${value.length} byte${value.length === 1 ? '' : 's'}>`
  return `<${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}>`
}

const HOUR = 3_600_000

type Spec = Record<string, unknown>

/** Validates one field; `at` is the field's path in messages, e.g. 'discovery[0].port'. */
class Fields {
  constructor (readonly pool: string, readonly at: string, readonly spec: Spec) {}

  fail (field: string, why: string): never {
    throw invalidOption(this.pool, `${this.at}.${field}`, this.spec[field], why)
  }

  /** Like fail, showing only the value's type and length (the field's own, unless given: a list's item). */
  failSecret (field: string, why: string, value: unknown = this.spec[field]): never {
    throw invalidOption(this.pool, `${this.at}.${field}`, shapeOf(value), why)
  }

  string (field: string, fallback?: string): string {
    const value = this.spec[field] ?? fallback
    if (typeof value !== 'string' || value.length === 0) this.fail(field, 'must be a non-empty string')
    return value
  }

  optionalString (field: string): string | undefined {
    return this.spec[field] === undefined ? undefined : this.string(field)
  }

  /** An optional password or token: a non-empty string, never shown in a message. */
  optionalSecret (field: string): string | undefined {
    const value = this.spec[field]
    if (value === undefined) return undefined
    if (typeof value !== 'string' || value.length === 0) this.failSecret(field, 'must be a non-empty string')
    return value
  }

  integer (field: string, fallback: number, min: number, max: number): number {
    return checkInteger(this.pool, `${this.at}.${field}`, this.spec[field] ?? fallback, min, max)
  }

  oneOf<T extends string> (field: string, fallback: T, allowed: readonly T[]): T {
    const value = this.spec[field] ?? fallback
    if (!allowed.includes(value as T)) this.fail(field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
    return value as T
  }

  strings (field: string): string[] {
    const value = this.spec[field]
    if (value === undefined) return []
    const list = Array.isArray(value) ? value : [value]
    if (list.length === 0 || !list.every((v) => typeof v === 'string' && v.length > 0)) {
      this.fail(field, 'must be a non-empty string or an array of them')
    }
    return list as string[]
  }

  httpUrl (field: string, value: unknown): string {
    let parsed: URL | null = null
    try {
      parsed = typeof value === 'string' ? new URL(value) : null
    } catch {}
    if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search !== '' || parsed.hash !== '') {
      throw invalidOption(this.pool, `${this.at}.${field}`, value, 'must be an http(s) URL without a query')
    }
    return parsed.origin + parsed.pathname.replace(/\/+$/, '')
  }
}

/**
 * Checks a PEM value with `parse` (Node's own parser decides what it accepts).
 * A refusal names the field and shows only the value's type and length.
 */
function checkPem<T> (f: Fields, field: string, value: unknown, what: string, parse: (value: Pem) => T): T {
  const fail = (why: string): never => f.failSecret(field, why, value)
  if ((typeof value !== 'string' && !Buffer.isBuffer(value)) || value.length === 0) return fail(`must be ${what} in PEM, as a string or a Buffer`)
  const text = typeof value === 'string' ? value : value.toString('latin1')
  if (!text.includes('-----BEGIN ')) return fail(`must hold ${what} in PEM: the file's contents (readFileSync(path)), not its path`)
  try {
    return parse(value)
  } catch (err) {
    return fail(`is not ${what} Node can read: ${err instanceof Error ? err.message : String(err)}`)
  }
}

const certificate = (value: Pem): X509Certificate => new X509Certificate(value)

/**
 * A provider's `tls`: CA certificates, a client certificate and key (both or
 * neither, and matching), verification on unless turned off. Certificates and
 * keys are parsed here, so a mistake fails at startup rather than at the first
 * connection; their contents never appear in a message. `tls` only makes sense
 * with https URLs, so an http one is refused.
 */
function resolveTls (f: Fields, type: 'consul' | 'etcd', urls: string[]): ResolvedRegistryTls | undefined {
  const value = f.spec.tls
  if (value === undefined) return undefined
  if (!isRecord(value)) f.failSecret('tls', `must be an object with ${TLS_KEYS[type].join(', ')}`)
  const t = new Fields(f.pool, `${f.at}.tls`, value)
  for (const key of Object.keys(value)) {
    if (!TLS_KEYS[type].includes(key)) t.failSecret(key, `is not a tls option of the ${type} provider`)
  }
  const plain = urls.findIndex((u) => !u.startsWith('https:'))
  if (plain !== -1) {
    const field = Array.isArray(f.spec.url) ? `url[${plain}]` : 'url'
    throw invalidOption(f.pool, `${f.at}.${field}`, urls[plain], 'must be an https URL when tls is set')
  }
  if (value.rejectUnauthorized !== undefined && typeof value.rejectUnauthorized !== 'boolean') t.fail('rejectUnauthorized', 'must be a boolean')
  const tls: ResolvedRegistryTls = { rejectUnauthorized: value.rejectUnauthorized !== false }
  const servername = t.optionalString('servername')
  if (servername !== undefined) tls.servername = servername
  const { ca, cert, key } = value
  if (Array.isArray(ca)) {
    if (ca.length === 0) t.failSecret('ca', 'must be a CA certificate in PEM or a non-empty array of them')
    ca.forEach((one: unknown, i) => checkPem(t, `ca[${i}]`, one, 'a CA certificate', certificate))
    tls.ca = ca as Pem[]
  } else if (ca !== undefined) {
    checkPem(t, 'ca', ca, 'a CA certificate', certificate)
    tls.ca = ca as Pem
  }
  if (cert === undefined && key === undefined) return tls
  if (cert === undefined) t.fail('cert', 'is required with tls.key')
  if (key === undefined) t.failSecret('key', 'is required with tls.cert')
  const parsed = checkPem(t, 'cert', cert, 'a certificate', certificate)
  const privateKey = checkPem(t, 'key', key, 'a private key', (v) => createPrivateKey(v))
  if (!parsed.checkPrivateKey(privateKey)) t.failSecret('key', 'is not the private key of tls.cert')
  tls.cert = cert as Pem
  tls.key = key as Pem
  return tls
}

/** etcd's `username` and `password`: both or neither. */
function resolveCredentials (f: Fields): EtcdCredentials | undefined {
  const username = f.optionalString('username')
  const password = f.optionalSecret('password')
  if (username === undefined && password === undefined) return undefined
  if (username === undefined) f.fail('username', 'is required with password')
  if (password === undefined) f.fail('password', 'is required with username')
  return { username, password }
}

function resolveFile (f: Fields): ResolvedFileDiscovery {
  return {
    type: 'file',
    path: f.string('path'),
    debounce: f.integer('debounce', 50, 0, 60_000),
    interval: f.integer('interval', 5000, 0, HOUR)
  }
}

function resolveDns (f: Fields): ResolvedDnsDiscovery {
  const record = f.oneOf('record', 'SRV', ['SRV', 'A', 'AAAA'])
  let port = 0
  if (record === 'SRV') {
    if (f.spec.port !== undefined) f.fail('port', 'is given by SRV records; set it only with record A or AAAA')
  } else {
    if (f.spec.port === undefined) f.fail('port', `is required with record '${record}'`)
    port = f.integer('port', 0, 1, 65535)
  }
  const resolver = f.strings('resolver')
  try {
    // Node's own parser decides which server addresses it accepts.
    if (resolver.length > 0) new Resolver().setServers(resolver)
  } catch {
    f.fail('resolver', "must be DNS server addresses such as '127.0.0.1', '127.0.0.1:5353' or '[::1]:53'")
  }
  const interval = f.integer('interval', 30_000, 1, 24 * HOUR)
  const minInterval = f.integer('minInterval', Math.min(1000, interval), 1, interval)
  return {
    type: 'dns',
    name: f.string('name'),
    record,
    port,
    scheme: f.oneOf('scheme', 'http', ['http', 'https']),
    resolver,
    interval,
    minInterval,
    timeout: f.integer('timeout', 2000, 1, 60_000),
    tries: f.integer('tries', 2, 1, 10),
    onEmpty: f.oneOf('onEmpty', 'keep', ['keep', 'remove'])
  }
}

function resolveRetry (f: Fields): { retryInterval: number, maxRetryInterval: number } {
  const maxRetryInterval = f.integer('maxRetryInterval', 30_000, 1, HOUR)
  const retryInterval = f.integer('retryInterval', Math.min(1000, maxRetryInterval), 1, maxRetryInterval)
  return { retryInterval, maxRetryInterval }
}

function resolveConsul (f: Fields): ResolvedConsulDiscovery {
  const url = f.httpUrl('url', f.spec.url ?? 'http://127.0.0.1:8500')
  return {
    type: 'consul',
    url,
    service: f.string('service'),
    token: f.optionalSecret('token'),
    dc: f.optionalString('dc'),
    tags: f.strings('tag'),
    wait: f.integer('wait', 60_000, 1, 600_000),
    weightMeta: f.optionalString('weightMeta'),
    scheme: f.oneOf('scheme', 'http', ['http', 'https']),
    ...resolveRetry(f),
    timeout: f.integer('timeout', 10_000, 1, HOUR),
    onEmpty: f.oneOf('onEmpty', 'keep', ['keep', 'remove']),
    tls: resolveTls(f, 'consul', [url])
  }
}

function resolveEtcd (f: Fields): ResolvedEtcdDiscovery {
  const raw = f.spec.url ?? 'http://127.0.0.1:2379'
  const list = Array.isArray(raw) ? raw : [raw]
  if (list.length === 0) f.fail('url', 'must name at least one etcd client URL')
  const urls = list.map((u, i) => f.httpUrl(Array.isArray(raw) ? `url[${i}]` : 'url', u))
  return {
    type: 'etcd',
    urls,
    prefix: f.string('prefix'),
    timeout: f.integer('timeout', 5000, 1, HOUR),
    ...resolveRetry(f),
    credentials: resolveCredentials(f),
    tls: resolveTls(f, 'etcd', urls)
  }
}

const RESOLVERS: Record<DiscoveryOptions['type'], (f: Fields) => ResolvedDiscovery> = {
  file: resolveFile,
  dns: resolveDns,
  consul: resolveConsul,
  etcd: resolveEtcd
}

/** Validates a pool's `discovery` option (one provider or an array of them). Throws FST_LB_INVALID_OPTION. */
export function resolveDiscovery (pool: string, value: unknown): ResolvedDiscovery[] {
  if (value === undefined) return []
  const list: unknown[] = Array.isArray(value) ? value : [value]
  return list.map((spec, i) => {
    const at = Array.isArray(value) ? `discovery[${i}]` : 'discovery'
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw invalidOption(pool, at, spec, "must be a provider's options, e.g. { type: 'file', path }")
    }
    const fields = new Fields(pool, at, spec as Spec)
    if ((spec as Spec).type === undefined) fields.fail('type', "is required: 'file', 'dns', 'consul' or 'etcd'")
    const type = fields.oneOf<DiscoveryOptions['type']>('type', 'file', ['file', 'dns', 'consul', 'etcd'])
    for (const key of Object.keys(spec)) {
      if (KEYS[type].includes(key)) continue
      const why = `is not an option of the ${type} provider`
      if (SECRET_KEYS.has(key)) fields.failSecret(key, why)
      else fields.fail(key, why)
    }
    return RESOLVERS[type](fields)
  })
}
