import cluster from 'node:cluster'
import type { Logger } from '../types'
import type { LoadBalancer } from '../route/load-balancer'
import type { Pool } from '../pool/pool'
import { CHANNEL, isOurs, type Gathered, type GatherKind, type PrimaryMessage, type SharedEjection, type WorkerMessage } from './messages'
import type { ResolvedCluster } from './options'

type Collector = () => unknown

/**
 * A worker's side of cluster mode (docs/cluster.md). Its health registry
 * follows the checks of the worker the primary elected (or runs them, when
 * elected), its outlier detectors share their ejections, and it answers the
 * primary's gatherings of metrics and status. Nothing here runs per request.
 */
export class ClusterWorker {
  /** This worker's id in the cluster. */
  readonly id: number
  /** No primary answered: the worker runs its own checks, as without cluster mode. */
  alone = false
  private readonly collectors = new Map<GatherKind, Collector>()
  private readonly waiting = new Map<number, (data: Gathered[] | null) => void>()
  private nextId = 1
  private joined: ((welcomed: boolean) => void) | null = null
  private closed = false

  constructor (private readonly lb: LoadBalancer, readonly options: ResolvedCluster, private readonly log: Logger) {
    this.id = cluster.worker?.id ?? 0
    lb.health.follow()
    lb.health.onState = (key, state) => this.send({ channel: CHANNEL, kind: 'health', key, state })
    lb.eachPool((pool) => {
      const share = (): void => {
        const outlier = lb.health.attach(pool).outlier
        if (outlier === null) return
        outlier.onEject = (target, until, count) => {
          this.send({ channel: CHANNEL, kind: 'eject', ejection: { pool: pool.name, target: target.id, until, count } })
        }
      }
      share()
      // configure() may switch outlier detection on, a new detector: the pool's health replaced it before this listener runs.
      pool.on('configure', share)
    })
    process.on('message', this.onMessage)
  }

  /** Whether this process can be a cluster worker at all: forked by node:cluster (PM2's cluster mode too) with an IPC channel. */
  static available (): boolean {
    return cluster.isWorker && typeof process.send === 'function'
  }

  /** What this worker answers when the primary gathers `what`. */
  provide (what: GatherKind, collector: Collector): void {
    this.collectors.set(what, collector)
  }

  /**
   * Joins the machine: the primary answers with the health states and
   * ejections as they are (applied before this resolves, so the worker serves
   * its first request with them) and says whether this worker runs the checks.
   * Without an answer in time the worker checks alone.
   */
  async join (): Promise<void> {
    const welcomed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.options.timeout)
      this.joined = (ok) => {
        clearTimeout(timer)
        resolve(ok)
      }
      this.send({ channel: CHANNEL, kind: 'hello' })
    })
    this.joined = null
    if (welcomed || this.closed) return
    this.alone = true
    this.log.warn({ worker: this.id, timeoutMs: this.options.timeout },
      'fastify-lb: cluster mode, but no primary answered (is clusterPrimary() called in the primary?): this worker checks its targets alone')
    this.lb.health.lead()
  }

  /** Every worker's answer for `what`, this one's included; null when there is no primary to ask or it did not answer in time. */
  async gather (what: GatherKind): Promise<Gathered[] | null> {
    if (this.alone || this.closed || !process.connected) return null
    const id = this.nextId++
    return await new Promise<Gathered[] | null>((resolve) => {
      // The primary answers within its own gathering time; this bound is for a primary that is gone.
      const timer = setTimeout(() => this.settle(id, null), this.options.timeout)
      this.waiting.set(id, (data) => {
        clearTimeout(timer)
        resolve(data)
      })
      this.send({ channel: CHANNEL, kind: 'gather', id, what })
    })
  }

  close (): void {
    this.closed = true
    process.off('message', this.onMessage)
    this.joined?.(false)
    for (const id of [...this.waiting.keys()]) this.settle(id, null)
  }

  private settle (id: number, data: Gathered[] | null): void {
    const done = this.waiting.get(id)
    if (done === undefined) return
    this.waiting.delete(id)
    done(data)
  }

  private send (message: WorkerMessage): void {
    if (this.closed || !process.connected || process.send === undefined) return
    process.send(message, undefined, {}, () => {})
  }

  private poolNamed (name: string): Pool | undefined {
    for (const pool of this.lb.allPools()) if (pool.name === name) return pool
    return undefined
  }

  private eject (e: SharedEjection): void {
    const pool = this.poolNamed(e.pool)
    const target = pool?.get(e.target)
    if (pool === undefined || target === undefined) return
    this.lb.health.attach(pool).outlier?.ejectFromPeer(target, e.until, e.count)
  }

  private async collect (id: number, what: GatherKind): Promise<void> {
    let data: unknown = null
    try {
      data = await this.collectors.get(what)?.()
    } catch (err) {
      this.log.error({ err, what }, 'fastify-lb: could not collect for another worker')
    }
    this.send({ channel: CHANNEL, kind: 'collected', id, data })
  }

  private readonly onMessage = (message: unknown): void => {
    if (!isOurs(message) || this.closed) return
    const m = message as PrimaryMessage
    switch (m.kind) {
      case 'welcome':
        // Too late: the worker went on alone.
        if (this.joined === null) return
        for (const [key, state] of m.health) this.lb.health.adopt(key, state)
        for (const e of m.ejections) this.eject(e)
        if (m.checking) this.lb.health.lead()
        this.log.info({ worker: this.id, checking: m.checking, checks: m.health.length, ejections: m.ejections.length }, 'fastify-lb: joined the cluster')
        this.joined?.(true)
        break
      case 'lead':
        this.log.info({ worker: this.id }, 'fastify-lb: this worker runs the health checks from now on')
        this.lb.health.lead()
        break
      case 'health':
        this.lb.health.adopt(m.key, m.state)
        break
      case 'eject':
        this.eject(m.ejection)
        break
      case 'collect':
        this.collect(m.id, m.what).catch(() => {})
        break
      case 'gathered':
        this.settle(m.id, m.data)
        break
    }
  }
}
