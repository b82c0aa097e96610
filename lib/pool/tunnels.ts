import type { Target } from './target'

/** Values of `result` in `lb_websocket_total`: how an upgrade sent to a target ended. */
export const TUNNEL_RESULTS = ['upgraded', 'rejected', 'failed'] as const
export type TunnelResult = typeof TUNNEL_RESULTS[number]

/** What the pool may do to an open tunnel: end it (drain timeout, idle, the gateway closing). */
export interface OpenTunnel {
  readonly target: Target
  close (): void
}

export type TunnelListener = (target: Target, result: TunnelResult) => void

/**
 * The open WebSocket tunnels of one pool, by target. A tunnel holds its
 * target's in-flight slot until it closes (least-connections, bounded loads and
 * limits see long-lived sockets); this is where a drain, the gateway closing,
 * or the metrics find them.
 */
export class Tunnels {
  private readonly open = new Map<Target, Set<OpenTunnel>>()
  private readonly drainTimers = new Map<Target, NodeJS.Timeout>()
  private readonly listeners: TunnelListener[] = []
  /** Open tunnels over every target. */
  size = 0

  /** `drainTimeout`: the pool's option, which configure() may change. */
  constructor (public drainTimeout: number) {}

  /** Called with how every upgrade ended on a target (the metrics count them). */
  onResult (listener: TunnelListener): void {
    this.listeners.push(listener)
  }

  /** An upgrade sent to target ended: `upgraded` ones are added as open tunnels by the caller. */
  count (target: Target, result: TunnelResult): void {
    for (const listener of this.listeners) listener(target, result)
  }

  add (tunnel: OpenTunnel): void {
    const target = tunnel.target
    let set = this.open.get(target)
    if (set === undefined) {
      set = new Set()
      this.open.set(target, set)
    }
    set.add(tunnel)
    target.tunnels++
    this.size++
    // A tunnel that opens on a draining target (a sticky client) gets the drain's deadline too.
    if (target.draining) this.draining(target)
  }

  delete (tunnel: OpenTunnel): void {
    const target = tunnel.target
    const set = this.open.get(target)
    if (set === undefined || !set.delete(tunnel)) return
    target.tunnels--
    this.size--
    if (set.size === 0) {
      this.open.delete(target)
      const timer = this.drainTimers.get(target)
      if (timer !== undefined) {
        clearTimeout(timer)
        this.drainTimers.delete(target)
      }
    }
  }

  /**
   * target started to drain: its tunnels may finish on their own until
   * drainTimeout, then they are closed, so drain() and remove() end.
   */
  draining (target: Target): void {
    if (!this.open.has(target) || this.drainTimers.has(target)) return
    const timer = setTimeout(() => {
      this.drainTimers.delete(target)
      this.closeOn(target)
    }, this.drainTimeout)
    timer.unref()
    this.drainTimers.set(target, timer)
  }

  /** A drain was called off (reconcile took the target back): its tunnels stay. */
  undrained (target: Target): void {
    const timer = this.drainTimers.get(target)
    if (timer === undefined) return
    clearTimeout(timer)
    this.drainTimers.delete(target)
  }

  /** Ends every tunnel of target. */
  closeOn (target: Target): void {
    const set = this.open.get(target)
    if (set === undefined) return
    for (const tunnel of [...set]) tunnel.close()
  }

  /** Ends every tunnel of the pool (the gateway closes). */
  closeAll (): void {
    for (const target of [...this.open.keys()]) this.closeOn(target)
  }
}
