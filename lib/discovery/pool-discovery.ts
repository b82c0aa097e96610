import { isDeepStrictEqual } from 'node:util'
import type { Logger } from '../types'
import type { PoolPolicy } from '../pool/policy'
import type { ResolvedTarget } from '../options/resolve'
import { kReconcileSteps, type MembershipChange, type Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import { messageOf, type DiscoveryEvent, type DiscoverySink, type Provider } from './provider'

/** Merged lists longer than this are planned at the next turn of the event loop, apart from their merging. */
const LONG_LIST = 1000

/** What the steps of one change did to the pool, for its log line. */
interface ChangeLog {
  /** Whether the pool emitted any 'change', a new weight alone included. */
  changed: boolean
  added: Target[]
  draining: Target[]
  removed: Target[]
}

/**
 * Keeps one pool's membership equal to its `targets` plus the latest list of
 * each of its providers. A provider that fails or has not answered yet
 * contributes its last list (or nothing); an entry that appears in several
 * sources counts once, the first source winning.
 *
 * A change of many targets is applied in steps (see Pool[kReconcileSteps]),
 * one per turn of the event loop, so requests and timers go on meanwhile. A
 * list that arrives during the steps replaces the rest of them, planned anew
 * from the pool as it is. The 'discovery' events and the log line come once
 * the pool holds the latest lists.
 */
export class PoolDiscovery {
  private readonly pool: Pool
  private readonly providers: readonly Provider[]
  private readonly log: Logger
  private readonly lists: Array<readonly ResolvedTarget[]>
  /** The last error of each provider while it is failing, so a repeated error is logged once. */
  private readonly failing: Array<string | null>
  /** The pool options each provider's source carried when last applied: the same options again are not applied again. */
  private readonly policies: Array<Readonly<Record<string, unknown>> | undefined>
  private stopped = false
  /** The change being applied: the merged lists, then its steps and the next one to run. */
  private merged: ResolvedTarget[] | null = null
  private steps: Array<() => void> | null = null
  private next = 0
  /** A list arrived since the change under way was planned. */
  private replan = false
  private immediate: NodeJS.Immediate | null = null
  /** What to report once the pool holds the latest lists: each update's event, and who waits for a provider's first answer. */
  private readonly done: Array<{ event: DiscoveryEvent, answered: () => void }> = []
  /** The provider whose list came last, and what the steps so far did, for the log line. */
  private provider = ''
  private changeLog: ChangeLog = { changed: false, added: [], draining: [], removed: [] }

  constructor (pool: Pool, providers: readonly Provider[], log: Logger) {
    this.pool = pool
    this.providers = providers
    this.log = log
    this.lists = providers.map(() => [])
    this.failing = providers.map(() => null)
    this.policies = providers.map(() => undefined)
  }

  /** Starts every provider; resolves once each has answered or failed for the first time. */
  async start (): Promise<void> {
    await Promise.all(this.providers.map(async (provider, i) => {
      await new Promise<void>((resolve) => provider.start(this.sinkOf(i, resolve)))
    }))
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.immediate !== null) clearImmediate(this.immediate)
    this.immediate = null
    // A change cut short by the close reports nothing, but start() must not wait for it.
    for (const { answered } of this.done.splice(0)) answered()
    await Promise.all(this.providers.map(async (provider) => provider.stop()))
  }

  private sinkOf (i: number, answered: () => void): DiscoverySink {
    const provider = this.providers[i].type
    const context = { pool: this.pool.name, provider }
    const fail = (message: string): void => {
      if (this.failing[i] !== message) this.log.warn({ ...context, error: message }, 'fastify-lb: discovery failed; the pool keeps its last list')
      this.failing[i] = message
      this.emit({ provider, ok: false, targets: this.lists[i].length, error: message })
      answered()
    }
    return {
      update: (targets, policy) => {
        if (this.stopped) return
        // Options first: refused ones leave the list unapplied too, so the pool never runs half of a source's change.
        const refused = this.configure(i, policy)
        if (refused !== null) return fail(`options refused: ${refused}`)
        this.lists[i] = targets
        if (this.failing[i] !== null) this.log.info(context, 'fastify-lb: discovery recovered')
        this.failing[i] = null
        this.apply(provider, { event: { provider, ok: true, targets: targets.length }, answered })
      },
      fail: (error) => {
        if (!this.stopped) fail(messageOf(error))
      },
      warn: (message) => {
        if (!this.stopped) this.log.warn(context, `fastify-lb: ${message}`)
      }
    }
  }

  /**
   * Applies the pool options a provider's source carries when they differ from
   * those it carried last: a source that only changed its list does not undo a
   * configure() made in code since. Options that leave the source keep their
   * values. The reason the pool refused them, or null.
   */
  private configure (i: number, policy: Readonly<Record<string, unknown>> | undefined): string | null {
    const last = this.policies[i]
    if (policy === undefined || (last !== undefined && isDeepStrictEqual(last, policy))) {
      this.policies[i] = policy
      return null
    }
    let changed: readonly string[]
    try {
      // configure() checks every key and value itself, and throws before changing anything.
      changed = this.pool.configure(policy as PoolPolicy).changed
    } catch (err) {
      return messageOf(err)
    }
    this.policies[i] = policy
    if (changed.length > 0) this.log.info({ pool: this.pool.name, provider: this.providers[i].type, changed }, "fastify-lb: discovery changed the pool's options")
    return null
  }

  private emit (event: DiscoveryEvent): void {
    this.pool.emit('discovery', event)
  }

  private apply (provider: string, done: { event: DiscoveryEvent, answered: () => void }): void {
    this.done.push(done)
    this.provider = provider
    // A change under way picks the new lists up at its next turn.
    if (this.immediate !== null) this.replan = true
    else this.advance()
  }

  /**
   * Moves the change on, one phase per turn of the event loop once it is long:
   * merging the lists, planning the steps, then each step. A short change
   * (short lists, one step) is applied at once.
   */
  private advance (): void {
    this.immediate = null
    if (this.stopped) return
    if (this.replan) {
      this.replan = false
      this.merged = null
      this.steps = null
    }
    if (this.merged === null) {
      this.merged = this.merge()
      if (this.merged.length > LONG_LIST) return this.later()
    }
    if (this.steps === null) {
      this.next = 0
      try {
        this.steps = this.pool[kReconcileSteps](this.merged)
      } catch (err) {
        this.steps = []
        this.failed(err)
      }
      if (this.steps.length > 1) return this.later()
    }
    if (this.next < this.steps.length) {
      this.runStep(this.steps[this.next++])
      if (this.next < this.steps.length) return this.later()
    }
    this.merged = null
    this.steps = null
    this.logChange()
    for (const { event, answered } of this.done.splice(0)) {
      this.emit(event)
      answered()
    }
  }

  private later (): void {
    this.immediate = setImmediate(() => this.advance())
  }

  /** The pool's `targets` and each provider's latest list, without repeated ids or URLs. */
  private merge (): ResolvedTarget[] {
    const merged: ResolvedTarget[] = []
    const ids = new Set<string>()
    const urls = new Set<string>()
    for (const list of [this.pool.options.targets, ...this.lists]) {
      for (const t of list) {
        if (ids.has(t.id) || urls.has(t.url)) continue
        ids.add(t.id)
        urls.add(t.url)
        merged.push(t)
      }
    }
    return merged
  }

  private runStep (step: () => void): void {
    const log = this.changeLog
    const listener = (c: MembershipChange): void => {
      log.changed = true
      for (const t of c.added) log.added.push(t)
      for (const t of c.updated) if (t.draining) log.draining.push(t)
      for (const t of c.removed) log.removed.push(t)
    }
    this.pool.on('change', listener)
    try {
      step()
    } catch (err) {
      this.steps = []
      this.failed(err)
    } finally {
      this.pool.off('change', listener)
    }
  }

  private failed (err: unknown): void {
    // Providers hand over checked targets; this is a bug, not bad input, and the pool keeps what it has.
    this.log.error({ pool: this.pool.name, provider: this.provider, error: messageOf(err) }, 'fastify-lb: discovery could not apply a list')
  }

  private logChange (): void {
    const change = this.changeLog
    this.changeLog = { changed: false, added: [], draining: [], removed: [] }
    if (!change.changed) return
    const ids = (targets: readonly Target[]): string[] => targets.map((t) => t.id)
    this.log.info({
      pool: this.pool.name,
      provider: this.provider,
      added: ids(change.added),
      draining: ids(change.draining),
      removed: ids(change.removed),
      targets: this.pool.targets.length
    }, 'fastify-lb: discovery changed the pool')
  }
}
