import type { Logger } from '../types'
import type { FailureKind, Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import type { ResolvedOutlierDetection } from './options'

/** Length of the n-th ejection in a row: base x n, at most max. */
export function ejectionMs (ejections: number, base: number, max: number): number {
  return Math.min(base * ejections, max)
}

/** How many of `members` targets may be ejected at once: the share, rounded down. */
export function ejectionLimit (members: number, maxEjectionPercent: number): number {
  // The small epsilon keeps 0.3 x 10 at 3, not at 2.9999999999999996 rounded down to 2.
  return Math.floor(maxEjectionPercent * members + 1e-9)
}

interface Ejection {
  /** Ejections counted towards the next one's length. */
  count: number
  /** When the last ejection ended (epoch ms), 0 if none has. */
  endedAt: number
  timer: NodeJS.Timeout | null
}

/**
 * Passive outlier detection for one pool: consecutive failed tries eject a
 * target for a time that grows with each ejection, as Envoy does. Runs on
 * every try's result, so the common case (a success) is one comparison and
 * one field write.
 */
export class OutlierDetector {
  private readonly ejections = new Map<Target, Ejection>()
  private ejectedNow = 0
  private closed = false
  /** @internal Told of every ejection this detector decides (cluster mode shares it with the other workers). */
  onEject: ((target: Target, until: number, count: number) => void) | null = null
  private connect = false
  private timeout = false
  private reset = false
  private status5xx = false

  constructor (
    private readonly pool: Pool,
    private options: ResolvedOutlierDetection,
    private readonly log: () => Logger | null
  ) {
    this.retune(options)
    pool.onResult(this.onResult)
  }

  /** New thresholds (pool.configure): ejections under way and failure counts carry on under them. */
  retune (options: ResolvedOutlierDetection): void {
    this.options = options
    this.connect = options.failOn.has('connect')
    this.timeout = options.failOn.has('timeout')
    this.reset = options.failOn.has('reset')
    this.status5xx = options.failOn.has('5xx')
  }

  /** Outlier detection is switched off (pool.configure): ejected targets return and results are no longer read. */
  stop (): void {
    this.pool.offResult(this.onResult)
    this.pool.batch(() => {
      for (const target of this.ejections.keys()) this.uneject(target, 'outlier detection switched off')
    })
    this.close()
  }

  private readonly onResult = (target: Target, status: number, failure: FailureKind | null): void => {
    if (failure === null && status < 500) {
      target.consecutiveFailures = 0
      return
    }
    // A client that left says nothing about the target; kinds that are not counted neither count nor reset.
    const counts = failure === null
      ? this.status5xx
      : failure === 'connect' ? this.connect : failure === 'timeout' ? this.timeout : failure === 'reset' && this.reset
    if (!counts) return
    if (++target.consecutiveFailures >= this.options.consecutiveFailures && target.ejectedUntil === 0) this.eject(target)
  }

  private eject (target: Target): void {
    if (this.closed) return
    let members = 0
    for (const t of this.pool.targets) if (!t.draining) members++
    // Refused: the count stays at the threshold, so the next failure asks again.
    if (this.ejectedNow >= ejectionLimit(members, this.options.maxEjectionPercent)) return
    const { baseEjectionTime: base, maxEjectionTime: max } = this.options
    const now = Date.now()
    const state = this.stateOf(target)
    // Each base period spent without an ejection forgives one earlier ejection.
    if (state.endedAt !== 0) state.count = Math.max(0, state.count - Math.floor((now - state.endedAt) / base))
    state.count++
    const duration = ejectionMs(state.count, base, max)
    this.hold(target, state, now + duration)
    this.log()?.warn({ pool: this.pool.name, target: target.id, ejectedMs: duration, ejections: state.count, consecutiveFailures: target.consecutiveFailures }, 'fastify-lb: target ejected')
    this.pool.emit('eject', target, target.ejectedUntil, false)
    this.onEject?.(target, target.ejectedUntil, state.count)
  }

  /**
   * @internal Cluster mode: applies an ejection another worker decided, with
   * its end and its count of ejections in a row, so that the next ejection
   * lasts as long whichever worker decides it. A longer ejection in force stays.
   */
  ejectFromPeer (target: Target, until: number, count: number): void {
    if (this.closed || until <= Date.now() || target.ejectedUntil >= until) return
    const state = this.stateOf(target)
    state.count = Math.max(state.count, count)
    this.hold(target, state, until)
    this.log()?.info({ pool: this.pool.name, target: target.id, ejectedMs: until - Date.now(), ejections: state.count }, 'fastify-lb: target ejected by another worker')
    this.pool.emit('eject', target, until, true)
  }

  /** @internal Cluster mode: the ejections in force, with their counts, for a process that joins later. */
  inForce (): Array<{ target: Target, until: number, count: number }> {
    const now = Date.now()
    const list: Array<{ target: Target, until: number, count: number }> = []
    for (const [target, state] of this.ejections) if (target.ejectedUntil > now) list.push({ target, until: target.ejectedUntil, count: state.count })
    return list
  }

  private stateOf (target: Target): Ejection {
    let state = this.ejections.get(target)
    if (state === undefined) {
      state = { count: 0, endedAt: 0, timer: null }
      this.ejections.set(target, state)
    }
    return state
  }

  /** Ejects until `until` (epoch ms), or moves the end of the ejection in force there. */
  private hold (target: Target, state: Ejection, until: number): void {
    if (state.timer !== null) clearTimeout(state.timer)
    if (target.ejectedUntil === 0) this.ejectedNow++
    this.pool.setEjectedUntil(target, until)
    state.timer = setTimeout(() => this.uneject(target, 'ejection time over'), Math.max(0, until - Date.now()))
    state.timer.unref()
  }

  /** Ends an ejection (its time is over, or an active check passed). */
  uneject (target: Target, reason: string): void {
    const state = this.ejections.get(target)
    if (state === undefined || target.ejectedUntil === 0) return
    if (state.timer !== null) clearTimeout(state.timer)
    state.timer = null
    state.endedAt = Date.now()
    target.consecutiveFailures = 0
    this.ejectedNow--
    this.log()?.info({ pool: this.pool.name, target: target.id, reason }, 'fastify-lb: target returns from ejection')
    this.pool.setEjectedUntil(target, 0)
    this.pool.emit('uneject', target)
  }

  /** Drops the state of a target that left the pool. */
  forget (target: Target): void {
    const state = this.ejections.get(target)
    if (state === undefined) return
    if (state.timer !== null) clearTimeout(state.timer)
    if (target.ejectedUntil !== 0) this.ejectedNow--
    // It has left the pool: no pickable set to rebuild.
    target.ejectedUntil = 0
    this.ejections.delete(target)
  }

  close (): void {
    this.closed = true
    for (const state of this.ejections.values()) {
      if (state.timer !== null) clearTimeout(state.timer)
      state.timer = null
    }
  }
}
