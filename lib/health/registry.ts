import { EventEmitter } from 'node:events'
import type { Logger } from '../types'
import type { Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import type { ResolvedTls } from '../options/tls'
import { Monitor, type CheckEvent, type HealthWatcher, type MonitorReport, type TransitionEvent } from './monitor'
import type { ResolvedHealthCheck } from './options'
import { PoolHealth } from './pool-health'

export interface HealthRegistryEvents {
  check: [CheckEvent]
  transition: [TransitionEvent]
}

/**
 * The gateway's health registry: one state machine per target URL and check
 * configuration, whichever pools share the target, so each is checked once per
 * interval. Pools are told of changes and rebuild their eligible set; every
 * change is logged once, here.
 *
 * Events: 'check' (CheckEvent) after every active check, 'transition'
 * (TransitionEvent) on every change of state.
 */
export class HealthRegistry extends EventEmitter<HealthRegistryEvents> {
  /** Where state changes are logged; the plugin sets the gateway's logger. */
  log: Logger | null = null
  private readonly monitorsByKey = new Map<string, Monitor>()
  private readonly poolHealth = new Map<Pool, PoolHealth>()
  private started = false
  private closed = false

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

  /** Makes target follow the shared state of its URL under check, checking it from now on if nobody did. */
  watch (target: Target, check: ResolvedHealthCheck, watcher: HealthWatcher): Monitor {
    const key = target.url + '\n' + check.key
    let monitor = this.monitorsByKey.get(key)
    if (monitor === undefined) {
      monitor = new Monitor(target, check, this.tls, this.report)
      this.monitorsByKey.set(key, monitor)
      if (this.started && !this.closed) monitor.start()
    }
    monitor.watchers.set(target, watcher)
    return monitor
  }

  /** Stops following; the last watcher of a URL stops its checks. */
  unwatch (target: Target, check: ResolvedHealthCheck): void {
    const key = target.url + '\n' + check.key
    const monitor = this.monitorsByKey.get(key)
    if (monitor === undefined || !monitor.watchers.delete(target)) return
    if (monitor.watchers.size === 0) {
      monitor.stop()
      this.monitorsByKey.delete(key)
    }
  }

  /** Runs every first check now; monitors created later start at once. */
  start (): void {
    if (this.started || this.closed) return
    this.started = true
    for (const monitor of this.monitorsByKey.values()) monitor.start()
  }

  /** Stops every check, ejection and slow-start timer. */
  close (): void {
    this.closed = true
    for (const monitor of this.monitorsByKey.values()) monitor.stop()
    this.monitorsByKey.clear()
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

  private readonly report: MonitorReport = {
    transition: (event) => {
      const line = { target: event.id, url: event.url, from: event.from, to: event.to, reason: event.reason }
      if (event.to === 'unhealthy') this.log?.warn(line, 'fastify-lb: target is unhealthy')
      else this.log?.info(line, 'fastify-lb: target is healthy')
      this.guarded(() => this.emit('transition', event))
    },
    check: (event) => this.guarded(() => this.emit('check', event))
  }
}
