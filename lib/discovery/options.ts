import { Resolver } from 'node:dns/promises'
import { OptionReader, type OptionKey } from '../options/reader'
import { certificate, checkPem, privateKey, readTls, type Pem, type ResolvedTls, type TlsOptions } from '../options/tls'

/** What a DNS or Consul provider does with an answer that lists no target. */
export type OnEmpty = 'keep' | 'remove'

/** A JSON file holding an array of targets (the same shape as the `targets` option), or `{ targets, options }` with pool options beside them, watched for changes. */
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

/** TLS towards a registry reached over https: the same options as towards upstreams. */
export type RegistryTlsOptions = TlsOptions

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
export interface ResolvedRegistryTls extends ResolvedTls {
  cert?: Pem
  key?: Pem
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

const HOUR = 3_600_000

/** A registry's URL, without a trailing slash; `value` is the key's own unless given (a default). */
function httpUrl (at: OptionReader, key: OptionKey, value: unknown = at.value(key)): string {
  let parsed: URL | null = null
  try {
    parsed = typeof value === 'string' ? new URL(value) : null
  } catch {}
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search !== '' || parsed.hash !== '') {
    at.fail(key, 'must be an http(s) URL without a query', value)
  }
  return parsed.origin + parsed.pathname.replace(/\/+$/, '')
}

/**
 * A provider's `tls`: CA certificates, a client certificate and key (both or
 * neither, and matching), verification on unless turned off. Certificates and
 * keys are parsed here, so a mistake fails at startup rather than at the first
 * connection; their contents never appear in a message. `tls` only makes sense
 * with https URLs, so an http one is refused.
 */
function resolveTls (f: OptionReader, type: 'consul' | 'etcd', urls: string[]): ResolvedRegistryTls | undefined {
  if (!f.has('tls')) return undefined
  const t: OptionReader = f.object('tls', { shape: `must be an object with ${TLS_KEYS[type].join(', ')}`, secret: true })
    .known(TLS_KEYS[type], `is not a tls option of the ${type} provider`, () => true)
  const plain = urls.findIndex((u) => !u.startsWith('https:'))
  if (plain !== -1) f.fail(Array.isArray(f.value('url')) ? `url[${plain}]` : 'url', 'must be an https URL when tls is set', urls[plain])
  const tls: ResolvedRegistryTls = readTls(t, true)
  const cert = t.value('cert')
  const key = t.value('key')
  if (cert === undefined && key === undefined) return tls
  if (cert === undefined) t.fail('cert', 'is required with tls.key')
  if (key === undefined) t.failSecret('key', 'is required with tls.cert')
  const parsed = checkPem(t, 'cert', 'a certificate', certificate)
  if (!parsed.checkPrivateKey(checkPem(t, 'key', 'a private key', privateKey))) t.failSecret('key', 'is not the private key of tls.cert')
  tls.cert = cert as Pem
  tls.key = key as Pem
  return tls
}

/** etcd's `username` and `password`: both or neither. */
function resolveCredentials (f: OptionReader): EtcdCredentials | undefined {
  const username = f.optionalString('username')
  const password = f.optionalSecret('password')
  if (username === undefined && password === undefined) return undefined
  if (username === undefined) f.fail('username', 'is required with password')
  if (password === undefined) f.fail('password', 'is required with username')
  return { username, password }
}

function resolveFile (f: OptionReader): ResolvedFileDiscovery {
  return {
    type: 'file',
    path: f.string('path'),
    debounce: f.integer('debounce', 50, 0, 60_000),
    interval: f.integer('interval', 5000, 0, HOUR)
  }
}

function resolveDns (f: OptionReader): ResolvedDnsDiscovery {
  const record = f.oneOf('record', 'SRV', ['SRV', 'A', 'AAAA'])
  let port = 0
  if (record === 'SRV') {
    if (f.has('port')) f.fail('port', 'is given by SRV records; set it only with record A or AAAA')
  } else {
    if (!f.has('port')) f.fail('port', `is required with record '${record}'`)
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

function resolveRetry (f: OptionReader): { retryInterval: number, maxRetryInterval: number } {
  const maxRetryInterval = f.integer('maxRetryInterval', 30_000, 1, HOUR)
  const retryInterval = f.integer('retryInterval', Math.min(1000, maxRetryInterval), 1, maxRetryInterval)
  return { retryInterval, maxRetryInterval }
}

function resolveConsul (f: OptionReader): ResolvedConsulDiscovery {
  const url = httpUrl(f, 'url', f.value('url') ?? 'http://127.0.0.1:8500')
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

function resolveEtcd (f: OptionReader): ResolvedEtcdDiscovery {
  const raw = f.value('url')
  if (Array.isArray(raw) && raw.length === 0) f.fail('url', 'must name at least one etcd client URL')
  const urls = raw == null ? [httpUrl(f, 'url', 'http://127.0.0.1:2379')] : f.oneOrMany('url', httpUrl)
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

const RESOLVERS: Record<DiscoveryOptions['type'], (f: OptionReader) => ResolvedDiscovery> = {
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
    const f: OptionReader = OptionReader.of(pool, at, spec, { shape: "must be a provider's options, e.g. { type: 'file', path }" })
    if (!f.has('type')) f.fail('type', "is required: 'file', 'dns', 'consul' or 'etcd'")
    const type = f.oneOf<DiscoveryOptions['type']>('type', 'file', ['file', 'dns', 'consul', 'etcd'])
    f.known(KEYS[type], `is not an option of the ${type} provider`, (key) => SECRET_KEYS.has(key))
    return RESOLVERS[type](f)
  })
}
