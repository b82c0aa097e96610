import cluster from 'node:cluster'
import type { Logger } from '../types'
import type { LoadBalancer } from '../route/load-balancer'
import type { Pool } from '../pool/pool'
import { CHANNEL, type Gathered, type GatherKind, type PrimaryMessage, type SharedEjection, type WorkerMessage } from './messages'
import type { ResolvedCluster } from './options'
import type { HubSeed } from './hub'
import { ipcLink, type Link, type LinkEvents } from './link'
import { underPm2 } from './pm2'
import { socketLink, socketPath } from './socket-link'

type Collector = () => unknown

/**
 * A worker's side of cluster mode (docs/cluster.md). Its health registry
 * follows the checks of the worker the hub elected (or runs them, when
 * elected), its outlier detectors share their ejections, and it answers the
 * hub's gatherings of metrics and status. The hub is clusterPrimary() in the
 * node:cluster primary, or, where none answers (PM2's cluster mode), the
 * worker that holds the machine's Unix socket. Nothing here runs per request.
 */
export class ClusterWorker {
  /** This worker's id in the cluster. */
  readonly id: number
  /** No hub could be joined: the worker runs its own checks, as without cluster mode. */
  alone = false
  private readonly collectors = new Map<GatherKind, Collector>()
  private readonly waiting = new Map<number, (data: Gathered[] | null) => void>()
  private nextId = 1
  private joined: ((welcomed: boolean) => void) | null = null
  private closed = false
  private link: Link | null = null
  /** An election is under way: a hub lost meanwhile makes it try again rather than start another. */
  private electing = false

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
  }

  /** Whether this process can be a cluster worker at all: forked by node:cluster (PM2's cluster mode too) with an IPC channel. */
  static available (): boolean {
    return cluster.isWorker && typeof process.send === 'function'
  }

  /** What this worker answers when the hub gathers `what`. */
  provide (what: GatherKind, collector: Collector): void {
    this.collectors.set(what, collector)
  }

  /** Through what this worker is joined: 'primary', 'socket', 'socket (hub)'; null while it is not. */
  get via (): string | null {
    return this.link?.via ?? null
  }

  /**
   * Joins the machine: the hub answers with the health states and ejections
   * as they are (applied before this resolves, so the worker serves its first
   * request with them) and says whether this worker runs the checks. The
   * primary is asked first, unless PM2 runs the process (its daemon is the
   * primary and runs none of the plugin's code); without its answer in time,
   * the workers elect a hub over the machine's socket. Without any, the
   * worker checks alone.
   */
  async join (): Promise<void> {
    let welcomed = false
    if (!underPm2()) {
      welcomed = await this.hello(ipcLink(this.events), this.options.timeout)
      if (!welcomed && !this.closed) {
        this.log.info({ worker: this.id, timeoutMs: this.options.timeout }, 'fastify-lb: no primary answered (no clusterPrimary() there): the workers elect a hub over a socket')
      }
    }
    if (!welcomed && !this.closed) welcomed = await this.elect()
    if (welcomed || this.closed) return
    this.goAlone()
  }

  /** Every worker's answer for `what`, this one's included; null when there is no hub to ask or it did not answer in time. */
  async gather (what: GatherKind): Promise<Gathered[] | null> {
    if (this.alone || this.closed || this.link?.open !== true) return null
    const id = this.nextId++
    return await new Promise<Gathered[] | null>((resolve) => {
      // The hub answers within its own gathering time; this bound is for a hub that is gone.
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
    this.link?.close()
    this.link = null
    this.joined?.(false)
    this.settleAll()
  }

  /** Says hello through `link` and waits for the welcome; without one in time, the link is dropped. */
  private async hello (link: Link, timeout: number): Promise<boolean> {
    this.link = link
    const welcomed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeout)
      this.joined = (ok) => {
        clearTimeout(timer)
        resolve(ok)
      }
      this.send({ channel: CHANNEL, kind: 'hello', worker: this.id, pid: process.pid })
    })
    this.joined = null
    if (!welcomed && this.link === link) {
      link.close()
      this.link = null
    }
    return welcomed
  }

  /** Joins the hub on the machine's socket, or becomes it. */
  private async elect (): Promise<boolean> {
    this.electing = true
    try {
      return await this.claim(socketPath(this.options))
    } finally {
      this.electing = false
    }
  }

  private async claim (path: string): Promise<boolean> {
    for (let attempt = 0; attempt < 3 && !this.closed; attempt++) {
      let link: Link
      try {
        link = await socketLink({ path, self: { id: this.id, pid: process.pid }, gatherTimeout: Math.floor(this.options.timeout * 0.75), seed: this.seed, log: this.log }, this.events)
      } catch (err) {
        this.log.warn({ err, worker: this.id, socket: path }, 'fastify-lb: cannot use the cluster socket')
        return false
      }
      if (this.closed) {
        link.close()
        return false
      }
      if (await this.hello(link, this.options.timeout)) return true
    }
    return false
  }

  private goAlone (): void {
    this.alone = true
    this.log.warn({ worker: this.id, timeoutMs: this.options.timeout },
      'fastify-lb: cluster mode, but no hub could be joined (neither clusterPrimary() nor the cluster socket): this worker checks its targets alone')
    this.lb.health.lead()
  }

  /** The hub went away (its worker died or gave the socket up): join the next, or become it. */
  private rejoin (): void {
    this.link = null
    this.settleAll()
    if (this.closed) return
    if (this.electing) {
      // Lost while saying hello: the election under way tries again.
      this.joined?.(false)
      return
    }
    this.log.info({ worker: this.id }, 'fastify-lb: the cluster hub is gone: joining or becoming the next')
    this.elect().then((welcomed) => { if (!welcomed && !this.closed) this.goAlone() }, () => {})
  }

  /** What this worker knows of the machine, for the hub it may come to hold. */
  private readonly seed = (): HubSeed => {
    const ejections: SharedEjection[] = []
    for (const pool of this.lb.allPools()) {
      for (const e of this.lb.health.attach(pool).outlier?.inForce() ?? []) ejections.push({ pool: pool.name, target: e.target.id, until: e.until, count: e.count })
    }
    return { health: this.lb.health.states(), ejections }
  }

  private settleAll (): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, null)
  }

  private settle (id: number, data: Gathered[] | null): void {
    const done = this.waiting.get(id)
    if (done === undefined) return
    this.waiting.delete(id)
    done(data)
  }

  private send (message: WorkerMessage): void {
    if (!this.closed) this.link?.send(message)
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

  private readonly events: LinkEvents = {
    message: (m) => { this.onMessage(m) },
    lost: () => { this.rejoin() }
  }

  private onMessage (m: PrimaryMessage): void {
    if (this.closed) return
    switch (m.kind) {
      case 'welcome':
        // Too late: the worker went on alone.
        if (this.joined === null) return
        for (const [key, state] of m.health) this.lb.health.adopt(key, state)
        for (const e of m.ejections) this.eject(e)
        // A worker that joins a hub again (the last one died) may have checked under it, and must stop if another does.
        if (m.checking) this.lb.health.lead()
        else this.lb.health.standBy()
        this.log.info({ worker: this.id, via: this.link?.via, checking: m.checking, checks: m.health.length, ejections: m.ejections.length }, 'fastify-lb: joined the cluster')
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
