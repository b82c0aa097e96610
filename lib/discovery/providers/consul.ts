import { isIP } from 'node:net'
import type { Agent } from 'undici'
import { resolveTarget, type ResolvedTarget } from '../../options/resolve'
import { registryAgent, requestJson } from './http'
import { isRecord, MAX_WEIGHT } from '../../options/validate'
import type { ResolvedConsulDiscovery } from '../options'
import { RefreshingProvider } from './base'
import { messageOf } from '../provider'

function positiveInteger (value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? Math.min(n, MAX_WEIGHT) : undefined
}

/**
 * Follows the passing instances of a Consul service through the health API
 * with blocking queries: each answer's X-Consul-Index is sent back as `index`,
 * so Consul holds the request until the service changes or `wait` runs out.
 * Index handling follows Consul's documented rules: reset when it goes
 * backwards, never below 1.
 */
export class ConsulProvider extends RefreshingProvider {
  readonly type = 'consul'
  private readonly options: ResolvedConsulDiscovery
  private readonly agent: Agent
  private readonly controller = new AbortController()
  private index = 0

  constructor (pool: string, options: ResolvedConsulDiscovery) {
    super(pool, options.retryInterval, options.maxRetryInterval)
    this.options = options
    this.agent = registryAgent(options.tls)
  }

  protected async close (): Promise<void> {
    this.controller.abort()
    await this.agent.destroy()
  }

  protected refresh (): void {
    const { service, onEmpty } = this.options
    this.query().then((targets) => {
      const sink = this.live
      if (sink === null) return
      this.backoff.reset()
      if (targets.length === 0 && onEmpty === 'keep') {
        sink.fail(new Error(`no passing instances of ${service}; keeping the last list (onEmpty: 'keep')`))
      } else {
        sink.update(targets)
      }
      this.refresh()
    }, (err: unknown) => { this.retry(`Consul query for ${service} failed`, err) })
  }

  private url (): string {
    const { url, service, dc, tags, wait } = this.options
    const query = new URLSearchParams({ passing: 'true' })
    if (dc !== undefined) query.set('dc', dc)
    for (const tag of tags) query.append('tag', tag)
    if (this.index > 0) {
      query.set('index', String(this.index))
      query.set('wait', `${wait}ms`)
    }
    return `${url}/v1/health/service/${encodeURIComponent(service)}?${query.toString()}`
  }

  private async query (): Promise<ResolvedTarget[]> {
    const { token, wait, timeout } = this.options
    const blocking = this.index > 0
    const answer = await requestJson(this.agent, this.url(), {
      headers: token === undefined ? {} : { 'x-consul-token': token },
      signal: this.controller.signal,
      // Consul adds up to wait/16 of jitter to a blocking query.
      headersTimeout: (blocking ? wait + Math.ceil(wait / 16) : 0) + timeout,
      bodyTimeout: timeout
    })
    const header = answer.headers['x-consul-index']
    const next = Number(Array.isArray(header) ? header[0] : header)
    if (!Number.isSafeInteger(next)) throw new Error('answered without a valid X-Consul-Index header')
    this.index = next < this.index ? 0 : Math.max(1, next)
    if (!Array.isArray(answer.body)) throw new Error('answered with something other than a list of instances')
    return this.targets(answer.body)
  }

  private targets (entries: unknown[]): ResolvedTarget[] {
    const targets: ResolvedTarget[] = []
    const urls = new Set<string>()
    for (const entry of entries) {
      const service = isRecord(entry) && isRecord(entry.Service) ? entry.Service : null
      const node = isRecord(entry) && isRecord(entry.Node) ? entry.Node : {}
      const address = typeof service?.Address === 'string' && service.Address !== '' ? service.Address : node.Address
      if (service === null || typeof address !== 'string' || address === '') {
        this.warn(`left out a ${this.options.service} instance without an address`)
        continue
      }
      const host = isIP(address) === 6 ? `[${address}]` : address
      const url = `${this.options.scheme}://${host}:${String(service.Port)}`
      if (urls.has(url)) continue
      urls.add(url)
      try {
        targets.push(resolveTarget(this.pool, 'discovery', { url, weight: this.weightOf(service) }))
      } catch (err) {
        this.warn(`left out a ${this.options.service} instance: ${messageOf(err)}`)
      }
    }
    return targets
  }

  /** Service.Meta[weightMeta] when configured and valid, else Service.Weights.Passing, else 1. */
  private weightOf (service: Record<string, unknown>): number {
    const meta = this.options.weightMeta
    if (meta !== undefined && isRecord(service.Meta)) {
      const fromMeta = positiveInteger(service.Meta[meta])
      if (fromMeta !== undefined) return fromMeta
    }
    return (isRecord(service.Weights) ? positiveInteger(service.Weights.Passing) : undefined) ?? 1
  }
}
