import { EventEmitter } from 'node:events'
import type { Logger } from '../types'
import type { Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import type { ResolvedTls } from '../options/tls'
import { CheckList } from './check-list'
import { Monitor, type CheckEvent, type HealthSeed, type HealthWatcher, type MonitorState, type TransitionEvent } from './monitor'
import type { ResolvedHealthCheck } from './options'
import { PoolHealth } from './pool-health'

export interface HealthRegistryEvents {
  check: [CheckEvent]
  transition: [TransitionEvent]
}

/**
 * The gateway's health registry: one state machine per target URL and check
 * configuration, whichever pools share the target, so each is checked once per
 * interval; and one CheckList per target URL and list of checks, which the
 * pools with that list follow. Pools are told of changes and rebuild their
 * eligible set; every change is logged once, here.
 *
 * Events: 'check' (CheckEvent) after every active check, 'transition'
 * (TransitionEvent) on every change of state.
 */
export class HealthRegistry extends EventEmitter<HealthRegistryEvents> {
  /** Where state changes are logged; the plugin sets the gateway's logger. */
  log: Logger | null = null
  /** @internal Told the state each check of this process left its monitor in (cluster mode shares it). */
  onState: ((key: string, state: MonitorState) => void) | null = null
  private readonly monitorsByKey = new Map<string, Monitor>()
  private readonly lists = new Map<string, CheckList>()
  private readonly poolHealth = new Map<Pool, PoolHealth>()
  private started = false
  private closed = false
  /** Cluster mode: another process runs the checks, and their states come through adopt(). */
  private following = false
  /** The last state another process reported per monitor key, for monitors made later. */
  private readonly adopted = new Map<string, MonitorState>()

  constructor (private readonly tls: ResolvedTls) {
    super()
  }

  /** Every active state machine, one per checked target URL and check configuration. */
  monitors (): IterableIterator<Monitor> {
    return this.monitorsByKey.values()
  }

  /** Subscribes a pool: active checks, outlier detection and slow start as its options say. */
  attach (pool: Pool): PoolHealth {
    let health = this.poolHealth.get(pool)
    if (health === undefined) {
      health = new PoolHealth(pool, this)
      this.poolHealth.set(pool, health)
    }
    return health
  }

  /**
   * Makes target follow the shared state of its URL under every check of
   * `checks`, checking it from now on under each check nobody ran yet (from
   * `seed`'s state when given, else from the check's initial state).
   */
  watch (target: Target, checks: readonly ResolvedHealthCheck[], watcher: HealthWatcher, seed?: HealthSeed): CheckList {
    const key = listKey(target, checks)
    let list = this.lists.get(key)
    if (list === undefined) {
      list = new CheckList(target, checks.map((check, i) => this.monitor(target, check, i, seed)), this.transition)
      for (const monitor of list.monitors) monitor.listeners.add(list)
      this.lists.set(key, list)
    }
    list.watchers.set(target, watcher)
    return list
  }

  /** Stops following; the last watcher of a URL under a check stops that check. */
  unwatch (target: Target, checks: readonly ResolvedHealthCheck[]): void {
    const key = listKey(target, checks)
    const list = this.lists.get(key)
    if (list === undefined || !list.watchers.delete(target) || list.watchers.size > 0) return
    this.lists.delete(key)
    for (const monitor of list.monitors) {
      monitor.listeners.delete(list)
      if (monitor.listeners.size === 0) {
        monitor.stop()
        this.monitorsByKey.delete(monitorKey(target, monitor.check))
      }
    }
  }

  private monitor (target: Target, check: ResolvedHealthCheck, index: number, seed: HealthSeed | undefined): Monitor {
    const key = monitorKey(target, check)
    let monitor = this.monitorsByKey.get(key)
    if (monitor === undefined) {
      monitor = new Monitor(target, key, check, index, this.tls, this.check, seed)
      const known = this.adopted.get(key)
      if (known !== undefined) monitor.seed(known)
      this.monitorsByKey.set(key, monitor)
      if (this.checking && this.started && !this.closed) monitor.start()
    }
    return monitor
  }

  /** Runs every first check now; monitors created later start at once. */
  start (): void {
    if (this.started || this.closed) return
    this.started = true
    if (this.checking) for (const monitor of this.monitorsByKey.values()) monitor.start()
  }

  /** Whether this process runs the active checks: always, but for a cluster worker while another one checks. */
  get checking (): boolean {
    return !this.following
  }

  /** @internal Cluster mode, before start(): the checks' states come from another process, through adopt(), until lead(). */
  follow (): void {
    if (!this.started) this.following = true
  }

  /** @internal Cluster mode: this process runs the checks from now on, each one interval after the last one reported. */
  lead (): void {
    if (!this.following) return
    this.following = false
    if (!this.started || this.closed) return
    for (const monitor of this.monitorsByKey.values()) monitor.start()
  }

  /** @internal Cluster mode: another process runs the checks from now on; this one follows again. */
  standBy (): void {
    if (this.following) return
    this.following = true
    for (const monitor of this.monitorsByKey.values()) monitor.pause()
  }

  /** @internal Cluster mode: the state of every monitor that has a check behind it, for a process that joins later. */
  states (): Array<[string, MonitorState]> {
    const states: Array<[string, MonitorState]> = []
    for (const monitor of this.monitorsByKey.values()) {
      const state = monitor.state()
      if (state !== null) states.push([monitor.key, state])
    }
    return states
  }

  /** @internal Cluster mode: the state a check of another process left the monitor of `key` in. */
  adopt (key: string, state: MonitorState): void {
    if (this.closed) return
    this.adopted.set(key, state)
    this.monitorsByKey.get(key)?.adopt(state)
  }

  /** Stops every check, ejection and slow-start timer. */
  close (): void {
    this.closed = true
    for (const monitor of this.monitorsByKey.values()) monitor.stop()
    this.monitorsByKey.clear()
    this.lists.clear()
    for (const health of this.poolHealth.values()) health.close()
    this.poolHealth.clear()
  }

  /** Emits without letting a listener's exception stop the checks. */
  private guarded (emit: () => void): void {
    try {
      emit()
    } catch (err) {
      this.log?.error({ err }, 'fastify-lb: a health event listener threw')
    }
  }

  private readonly transition = (event: TransitionEvent): void => {
    const line = { target: event.id, url: event.url, from: event.from, to: event.to, reason: event.reason, check: event.check, type: event.type }
    if (event.to === 'unhealthy') this.log?.warn(line, 'fastify-lb: target is unhealthy')
    else this.log?.info(line, 'fastify-lb: target is healthy')
    this.guarded(() => this.emit('transition', event))
  }

  private readonly check = (event: CheckEvent, state: MonitorState, monitor: Monitor): void => {
    const share = this.onState
    if (share !== null) this.guarded(() => share(monitor.key, state))
    this.guarded(() => this.emit('check', event))
  }
}

function monitorKey (target: Target, check: ResolvedHealthCheck): string {
  return target.url + '\n' + check.key
}

function listKey (target: Target, checks: readonly ResolvedHealthCheck[]): string {
  return target.url + '\n' + checks.map((c) => c.key).join('\n')
}
