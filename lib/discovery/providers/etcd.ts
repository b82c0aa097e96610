import { request, type Agent } from 'undici'
import { resolveTarget, type ResolvedTarget } from '../../options/resolve'
import { registryAgent, requestJson, RegistryAnswerError } from './http'
import { isRecord } from '../../options/validate'
import type { EtcdCredentials, ResolvedEtcdDiscovery } from '../options'
import { RefreshingProvider } from './base'
import { messageOf } from '../provider'

/** The end of the key range holding every key that starts with prefix (etcd's `--prefix`). */
export function prefixEnd (prefix: Buffer): Buffer {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++
      return end.subarray(0, i + 1)
    }
  }
  // Every byte is 0xff: the range runs to the end of the key space.
  return Buffer.from([0])
}

const b64 = (b: Buffer): string => b.toString('base64')

/** A value is a target in JSON ({ url, weight?, id? } or "url"), or a bare URL. */
function parseValue (value: string): unknown {
  try {
    return JSON.parse(value)
  } catch {
    return value.trim()
  }
}

/**
 * The errors with which etcd refuses a token rather than a request: a token it
 * does not know or that expired (401 "invalid auth token"; a restart also
 * forgets simple tokens), a JWT older than the last change of users or roles
 * ("revision of auth store is old"), no token where authentication has since
 * been turned on ("user name is empty"). A new token cures them; etcd's own
 * client renews its token on the same errors.
 */
const TOKEN_REFUSED = /invalid auth token|revision of auth store is old|user name is empty/

function tokenRefused (err: unknown): boolean {
  return err instanceof RegistryAnswerError && (err.status === 401 || TOKEN_REFUSED.test(err.body))
}

type Headers = Record<string, string>

/**
 * Follows the targets stored under an etcd key prefix, through etcd's v3
 * HTTP/JSON gateway: a range read, then a watch from the next revision. A lost
 * connection, a failed or cancelled watch (compaction) keeps the last list and
 * starts over with a fresh read, trying the next URL when several are given.
 * The list is ordered by key and does not depend on the order events arrived
 * in, so every replica that reads the same keys builds the same list.
 *
 * With a username and password, the provider authenticates and sends etcd's
 * token as the Authorization header. Tokens expire (simple tokens after
 * --auth-token-ttl without use, JWTs after their ttl) while a watch runs; the
 * next read that etcd refuses for its token gets a new one at once.
 */
export class EtcdProvider extends RefreshingProvider {
  readonly type = 'etcd'
  private readonly options: ResolvedEtcdDiscovery
  private readonly agent: Agent
  private readonly controller = new AbortController()
  private readonly key: string
  private readonly rangeEnd: string
  /** The current value of every key under the prefix, by base64 key. */
  private readonly values = new Map<string, string>()
  private endpoint = 0
  /** The token sent as Authorization: null before authenticating and once etcd refused it; '' when etcd has authentication off. */
  private token: string | null = null
  private saidAuthOff = false

  constructor (pool: string, options: ResolvedEtcdDiscovery) {
    super(pool, options.retryInterval, options.maxRetryInterval)
    this.options = options
    this.agent = registryAgent(options.tls)
    const prefix = Buffer.from(options.prefix, 'utf8')
    this.key = b64(prefix)
    this.rangeEnd = b64(prefixEnd(prefix))
  }

  protected async close (): Promise<void> {
    this.controller.abort()
    await this.agent.destroy()
  }

  protected refresh (): void {
    const url = this.options.urls[this.endpoint % this.options.urls.length]
    this.follow(url).catch((err: unknown) => {
      this.endpoint++
      this.retry(`etcd at ${url}`, err)
    })
  }

  /** Reads the prefix, reports the list, then applies watch events until the watch ends. Only returns by throwing. */
  private async follow (url: string): Promise<void> {
    const { timeout } = this.options
    const answer = await this.authorized(url, async (headers) => requestJson(this.agent, `${url}/v3/kv/range`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ key: this.key, range_end: this.rangeEnd }),
      signal: this.controller.signal,
      headersTimeout: timeout,
      bodyTimeout: timeout
    }))
    const body = isRecord(answer.body) ? answer.body : {}
    const revision = Number(isRecord(body.header) ? body.header.revision : NaN)
    if (!Number.isSafeInteger(revision)) throw new Error('range answer without a revision')
    this.values.clear()
    for (const kv of Array.isArray(body.kvs) ? body.kvs : []) {
      if (isRecord(kv) && typeof kv.key === 'string') this.values.set(kv.key, typeof kv.value === 'string' ? kv.value : '')
    }
    this.report()
    await this.watch(url, revision + 1, await this.headers(url))
  }

  /** The Authorization header, authenticating first when there is no token. */
  private async headers (url: string): Promise<Headers> {
    const { credentials } = this.options
    if (credentials === undefined) return {}
    this.token ??= await this.authenticate(url, credentials)
    return this.token === '' ? {} : { authorization: this.token }
  }

  /**
   * Sends a request with the current token. A token that etcd refuses is
   * replaced at once and the request sent again, once: a new token refused
   * too is a failure like any other, retried after the provider's backoff.
   */
  private async authorized<T> (url: string, send: (headers: Headers) => Promise<T>): Promise<T> {
    const renewable = this.token !== null
    try {
      return await send(await this.headers(url))
    } catch (err) {
      if (this.options.credentials === undefined || !tokenRefused(err)) throw err
      this.token = null
      if (!renewable) throw err
      return await send(await this.headers(url))
    }
  }

  /**
   * Asks etcd for a token (POST /v3/auth/authenticate). An etcd with
   * authentication off answers that it is not enabled: requests then go
   * without a token, as etcd's own client does, until etcd asks for one.
   */
  private async authenticate (url: string, { username, password }: EtcdCredentials): Promise<string> {
    const { timeout } = this.options
    let body: unknown
    try {
      body = (await requestJson(this.agent, `${url}/v3/auth/authenticate`, {
        method: 'POST',
        body: JSON.stringify({ name: username, password }),
        signal: this.controller.signal,
        headersTimeout: timeout,
        bodyTimeout: timeout
      })).body
    } catch (err) {
      if (err instanceof RegistryAnswerError && err.body.includes('authentication is not enabled')) {
        if (!this.saidAuthOff) this.warn(`etcd at ${url} has authentication turned off: reading without a token`)
        this.saidAuthOff = true
        return ''
      }
      // The message names the user and etcd's answer, never the password.
      throw new Error(`authentication as user ${JSON.stringify(username)} failed: ${messageOf(err)}`)
    }
    const token = isRecord(body) ? body.token : undefined
    if (typeof token !== 'string' || token === '') throw new Error(`authentication as user ${JSON.stringify(username)} answered without a token`)
    return token
  }

  private async watch (url: string, fromRevision: number, headers: Headers): Promise<never> {
    const res = await request(`${url}/v3/watch`, {
      dispatcher: this.agent,
      method: 'POST',
      headers,
      body: JSON.stringify({ create_request: { key: this.key, range_end: this.rangeEnd, start_revision: String(fromRevision) } }),
      signal: this.controller.signal,
      headersTimeout: this.options.timeout,
      // A watch is quiet for as long as nothing changes.
      bodyTimeout: 0
    })
    if (res.statusCode !== 200) {
      if (res.statusCode === 401) this.token = null
      // dump() swallows the stream's own error; destroy() would emit one that nobody handles.
      await res.body.dump()
      throw new Error(`watch answered ${res.statusCode}`)
    }
    let buffered = ''
    for await (const chunk of res.body) {
      buffered += (chunk as Buffer).toString('utf8')
      let newline = buffered.indexOf('\n')
      while (newline !== -1) {
        const line = buffered.slice(0, newline).trim()
        buffered = buffered.slice(newline + 1)
        if (line !== '') this.onWatchMessage(line)
        newline = buffered.indexOf('\n')
      }
    }
    throw new Error('watch ended')
  }

  private onWatchMessage (line: string): void {
    const message: unknown = JSON.parse(line)
    if (!isRecord(message)) return
    if (isRecord(message.error)) throw new Error(`watch failed: ${String(message.error.message ?? 'unknown error')}`)
    const result = isRecord(message.result) ? message.result : {}
    if (result.canceled === true) {
      const reason = String(result.cancel_reason ?? 'no reason given')
      // etcd cancels a watch whose token it no longer accepts as "permission denied": the next attempt gets a new token.
      if (reason.includes('permission denied')) this.token = null
      throw new Error(`watch cancelled: ${reason}`)
    }
    if (result.created === true) this.backoff.reset()
    if (!Array.isArray(result.events) || result.events.length === 0) return
    for (const event of result.events) {
      if (!isRecord(event) || !isRecord(event.kv) || typeof event.kv.key !== 'string') continue
      // etcd's JSON leaves out the default event type, PUT.
      if (event.type === 'DELETE') this.values.delete(event.kv.key)
      else this.values.set(event.kv.key, typeof event.kv.value === 'string' ? event.kv.value : '')
    }
    this.report()
  }

  private report (): void {
    const sink = this.live
    if (sink === null) return
    // etcd orders keys by their bytes; so does this list.
    const entries = [...this.values].map(([k, v]) => ({ key: Buffer.from(k, 'base64'), value: v }))
    entries.sort((a, b) => Buffer.compare(a.key, b.key))
    const targets: ResolvedTarget[] = []
    const ids = new Set<string>()
    const urls = new Set<string>()
    for (const entry of entries) {
      const key = entry.key.toString('utf8')
      const value = Buffer.from(entry.value, 'base64').toString('utf8')
      try {
        const target = resolveTarget(this.pool, `etcd key ${key}`, parseValue(value))
        if (ids.has(target.id) || urls.has(target.url)) throw new Error('duplicates the target of an earlier key')
        ids.add(target.id)
        urls.add(target.url)
        targets.push(target)
      } catch (err) {
        this.warn(`left out etcd key ${key}: ${messageOf(err)}`)
      }
    }
    sink.update(targets)
  }
}
