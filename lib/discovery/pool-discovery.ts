import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedTarget, TargetInput } from '../options'
import type { MembershipChange, Pool } from '../pool'
import { messageOf, type DiscoveryEvent, type DiscoverySink, type Provider } from './provider'

/**
 * Keeps one pool's membership equal to its `targets` plus the latest list of
 * each of its providers. A provider that fails or has not answered yet
 * contributes its last list (or nothing); an entry that appears in several
 * sources counts once, the first source winning.
 */
export class PoolDiscovery {
  private readonly pool: Pool
  private readonly providers: readonly Provider[]
  private readonly log: FastifyBaseLogger
  private readonly lists: Array<readonly ResolvedTarget[]>
  /** The last error of each provider while it is failing, so a repeated error is logged once. */
  private readonly failing: Array<string | null>
  private stopped = false

  constructor (pool: Pool, providers: readonly Provider[], log: FastifyBaseLogger) {
    this.pool = pool
    this.providers = providers
    this.log = log
    this.lists = providers.map(() => [])
    this.failing = providers.map(() => null)
  }

  /** Starts every provider; resolves once each has answered or failed for the first time. */
  async start (): Promise<void> {
    await Promise.all(this.providers.map(async (provider, i) => {
      await new Promise<void>((resolve) => provider.start(this.sinkOf(i, resolve)))
    }))
  }

  async stop (): Promise<void> {
    this.stopped = true
    await Promise.all(this.providers.map(async (provider) => provider.stop()))
  }

  private sinkOf (i: number, answered: () => void): DiscoverySink {
    const provider = this.providers[i].type
    const context = { pool: this.pool.name, provider }
    return {
      update: (targets) => {
        if (this.stopped) return
        this.lists[i] = targets
        if (this.failing[i] !== null) this.log.info(context, 'fastify-lb: discovery recovered')
        this.failing[i] = null
        this.apply(provider)
        this.emit({ provider, ok: true, targets: targets.length })
        answered()
      },
      fail: (error) => {
        if (this.stopped) return
        const message = messageOf(error)
        if (this.failing[i] !== message) this.log.warn({ ...context, error: message }, 'fastify-lb: discovery failed; the pool keeps its last list')
        this.failing[i] = message
        this.emit({ provider, ok: false, targets: this.lists[i].length, error: message })
        answered()
      },
      warn: (message) => {
        if (!this.stopped) this.log.warn(context, `fastify-lb: ${message}`)
      }
    }
  }

  private emit (event: DiscoveryEvent): void {
    this.pool.emit('discovery', event)
  }

  private apply (provider: string): void {
    const merged: TargetInput[] = []
    const ids = new Set<string>()
    const urls = new Set<string>()
    for (const list of [this.pool.options.targets, ...this.lists]) {
      for (const t of list) {
        if (ids.has(t.id) || urls.has(t.url)) continue
        ids.add(t.id)
        urls.add(t.url)
        merged.push({ id: t.id, url: t.url, weight: t.weight })
      }
    }
    let change = null as MembershipChange | null
    const listener = (c: MembershipChange): void => { change = c }
    this.pool.on('change', listener)
    try {
      this.pool.reconcile(merged)
    } catch (err) {
      // Providers hand over checked targets; this is a bug, not bad input, and the pool stays as it was.
      this.log.error({ pool: this.pool.name, provider, error: messageOf(err) }, 'fastify-lb: discovery could not apply a list')
    } finally {
      this.pool.off('change', listener)
    }
    if (change !== null) this.logChange(provider, change)
  }

  private logChange (provider: string, change: MembershipChange): void {
    const ids = (targets: MembershipChange['added']): string[] => targets.map((t) => t.id)
    this.log.info({
      pool: this.pool.name,
      provider,
      added: ids(change.added),
      draining: ids(change.updated.filter((t) => t.draining)),
      removed: ids(change.removed),
      targets: this.pool.targets.length
    }, 'fastify-lb: discovery changed the pool')
  }
}
