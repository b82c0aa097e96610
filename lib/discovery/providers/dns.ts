import { Resolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import { resolveTarget, type ResolvedTarget } from '../../options/resolve'
import { MAX_WEIGHT } from '../../options/validate'
import type { ResolvedDnsDiscovery } from '../options'
import { RefreshingProvider } from './base'
import { messageOf } from '../provider'

/** Answers that mean "no such records" rather than "the lookup failed". */
const EMPTY_CODES = new Set(['ENOTFOUND', 'ENODATA'])

interface Address {
  address: string
  /** Seconds; Infinity when the answer carried none. */
  ttl: number
}

interface Answer {
  targets: ResolvedTarget[]
  /** The smallest TTL of the records behind the targets, in seconds. */
  ttl: number
}

function isEmpty (err: unknown): boolean {
  return typeof err === 'object' && err !== null && EMPTY_CODES.has((err as { code?: string }).code ?? '')
}

/**
 * Resolves a name into targets: SRV records (lowest priority only, as RFC 2782
 * says; the weight of each record becomes the target's weight) or A/AAAA
 * records with a configured port. Looks again when the TTL runs out, within
 * [minInterval, interval]. Node's resolver does not report the TTL of SRV
 * records, so with SRV it is the TTL of the hosts' address records.
 */
export class DnsProvider extends RefreshingProvider {
  readonly type = 'dns'
  private readonly options: ResolvedDnsDiscovery
  private readonly resolver: Resolver

  constructor (pool: string, options: ResolvedDnsDiscovery) {
    super(pool, options.minInterval, options.interval)
    this.options = options
    this.resolver = new Resolver({ timeout: options.timeout, tries: options.tries })
    if (options.resolver.length > 0) this.resolver.setServers(options.resolver)
  }

  protected async close (): Promise<void> {
    this.resolver.cancel()
  }

  protected refresh (): void {
    const { name, record, interval, minInterval, onEmpty } = this.options
    this.lookup().then((answer) => {
      const sink = this.live
      if (sink === null) return
      // Records may appear at any time after an empty answer: look again soon, then less often.
      if (answer.targets.length === 0) {
        this.timer.set(this.backoff.next())
      } else {
        this.backoff.reset()
        this.timer.set(Math.min(interval, Math.max(minInterval, answer.ttl * 1000)))
      }
      if (answer.targets.length === 0 && onEmpty === 'keep') {
        sink.fail(new Error(`no ${record} records for ${name}; keeping the last list (onEmpty: 'keep')`))
      } else {
        sink.update(answer.targets)
      }
    }, (err: unknown) => { this.retry(`DNS lookup of ${name} (${record}) failed`, err) })
  }

  private async lookup (): Promise<Answer> {
    const { record, name, port } = this.options
    if (record === 'SRV') return this.lookupSrv()
    const addresses = await this.addresses(name, record === 'A' ? 4 : 6)
    return this.answer(addresses.map((a) => ({ ...a, port, weight: 1 })))
  }

  private async lookupSrv (): Promise<Answer> {
    let records
    try {
      records = await this.resolver.resolveSrv(this.options.name)
    } catch (err) {
      if (isEmpty(err)) return { targets: [], ttl: Infinity }
      throw err
    }
    let best = Infinity
    for (const r of records) best = Math.min(best, r.priority)
    const chosen = records.filter((r) => r.priority === best)
    const hosts = await Promise.all(chosen.map(async (r) => this.hostAddresses(r.name)))
    const entries = chosen.flatMap((r, i) => hosts[i].map((a) => ({ ...a, port: r.port, weight: Math.max(1, r.weight) })))
    return this.answer(entries)
  }

  /** A SRV target's addresses: IPv4, or IPv6 when it has no IPv4 address. */
  private async hostAddresses (host: string): Promise<Address[]> {
    if (isIP(host) !== 0) return [{ address: host, ttl: Infinity }]
    const v4 = await this.addresses(host, 4)
    return v4.length > 0 ? v4 : this.addresses(host, 6)
  }

  private async addresses (host: string, family: 4 | 6): Promise<Address[]> {
    try {
      return family === 4
        ? await this.resolver.resolve4(host, { ttl: true })
        : await this.resolver.resolve6(host, { ttl: true })
    } catch (err) {
      if (isEmpty(err)) return []
      throw err
    }
  }

  private answer (entries: Array<Address & { port: number, weight: number }>): Answer {
    const targets: ResolvedTarget[] = []
    const urls = new Set<string>()
    let ttl = Infinity
    for (const e of entries) {
      const host = isIP(e.address) === 6 ? `[${e.address}]` : e.address
      const url = `${this.options.scheme}://${host}:${e.port}`
      if (urls.has(url)) continue
      urls.add(url)
      ttl = Math.min(ttl, e.ttl)
      try {
        targets.push(resolveTarget(this.pool, 'discovery', { url, weight: Math.min(e.weight, MAX_WEIGHT) }))
      } catch (err) {
        this.warn(`left out a DNS answer for ${this.options.name}: ${messageOf(err)}`)
      }
    }
    return { targets, ttl }
  }
}
