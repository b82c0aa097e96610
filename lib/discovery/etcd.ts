import { request } from 'undici'
import { resolveTarget, type ResolvedTarget } from '../options'
import { registryAgent, requestJson } from './http'
import { isRecord } from '../validate'
import type { ResolvedEtcdDiscovery } from './options'
import { RefreshingProvider } from './base'
import { messageOf } from './provider'

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
 * Follows the targets stored under an etcd key prefix, through etcd's v3
 * HTTP/JSON gateway: a range read, then a watch from the next revision. A lost
 * connection, a failed or cancelled watch (compaction) keeps the last list and
 * starts over with a fresh read, trying the next URL when several are given.
 * The list is ordered by key and does not depend on the order events arrived
 * in, so every replica that reads the same keys builds the same list.
 */
export class EtcdProvider extends RefreshingProvider {
  readonly type = 'etcd'
  private readonly options: ResolvedEtcdDiscovery
  private readonly agent = registryAgent()
  private readonly controller = new AbortController()
  private readonly key: string
  private readonly rangeEnd: string
  /** The current value of every key under the prefix, by base64 key. */
  private readonly values = new Map<string, string>()
  private endpoint = 0

  constructor (pool: string, options: ResolvedEtcdDiscovery) {
    super(pool, options.retryInterval, options.maxRetryInterval)
    this.options = options
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
    const answer = await requestJson(this.agent, `${url}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: this.key, range_end: this.rangeEnd }),
      signal: this.controller.signal,
      headersTimeout: timeout,
      bodyTimeout: timeout
    })
    const body = isRecord(answer.body) ? answer.body : {}
    const revision = Number(isRecord(body.header) ? body.header.revision : NaN)
    if (!Number.isSafeInteger(revision)) throw new Error('range answer without a revision')
    this.values.clear()
    for (const kv of Array.isArray(body.kvs) ? body.kvs : []) {
      if (isRecord(kv) && typeof kv.key === 'string') this.values.set(kv.key, typeof kv.value === 'string' ? kv.value : '')
    }
    this.report()
    await this.watch(url, revision + 1)
  }

  private async watch (url: string, fromRevision: number): Promise<never> {
    const res = await request(`${url}/v3/watch`, {
      dispatcher: this.agent,
      method: 'POST',
      body: JSON.stringify({ create_request: { key: this.key, range_end: this.rangeEnd, start_revision: String(fromRevision) } }),
      signal: this.controller.signal,
      headersTimeout: this.options.timeout,
      // A watch is quiet for as long as nothing changes.
      bodyTimeout: 0
    })
    if (res.statusCode !== 200) {
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
    if (result.canceled === true) throw new Error(`watch cancelled: ${String(result.cancel_reason ?? 'no reason given')}`)
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
