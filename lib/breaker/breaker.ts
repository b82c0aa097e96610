import type { ResolvedCircuitBreaker } from './options'
import { SlidingWindow } from './window'

export type CircuitState = 'closed' | 'half-open' | 'open'

/** The states in the order of the `lb_circuit_state` gauge's values: 0 closed, 1 half-open, 2 open. */
export const CIRCUIT_STATES = ['closed', 'half-open', 'open'] as const satisfies readonly CircuitState[]

/** A change of a pool's circuit breaker (pool event 'circuit'). */
export interface CircuitEvent {
  from: CircuitState
  to: CircuitState
  /**
   * The share of failed and of slow calls among the `calls` that decided: the
   * window's when a closed circuit opens, the trials' when a half-open one
   * closes or reopens; null when time decided (open to half-open).
   */
  failureRatio: number | null
  slowCallRatio: number | null
  calls: number
}

/** What the status page shows of a breaker now. */
export interface CircuitSnapshot {
  state: CircuitState
  /** Of the window while closed, of the trials so far while half-open, of the calls that opened it while open. */
  failureRatio: number
  slowCallRatio: number
  calls: number
  /** Requests answered by the breaker itself so far. */
  rejected: number
  /** Clock ms since the circuit last opened; null if it never did. */
  openedMsAgo: number | null
  /** Clock ms until an open circuit lets trials through; null unless open. */
  halfOpenInMs: number | null
}

/**
 * What the breaker needs of its pool: the timeout of a try, every try's
 * outcome, and the pool's 'circuit' event. Declared here so the breaker does
 * not import the pool, which creates it.
 */
export interface BreakerHost {
  readonly options: { readonly timeout: number }
  onResult: (listener: (target: object, status: number, failure: string | null, latencyMs: number) => void) => void
  emit: (event: 'circuit', change: CircuitEvent) => boolean
}

function ratio (part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole
}

/**
 * A pool's circuit breaker, after resilience4j's: closed, it counts every
 * try's outcome in a sliding window and opens when, with at least minRequests
 * calls, the failure or slow-call ratio reaches its threshold; open, it
 * refuses every request for openFor; half-open, it lets halfOpenRequests trials
 * through and their ratios close it or open it again. Closed, asking costs one
 * comparison.
 */
export class CircuitBreaker {
  /** Transitions so far by the state entered, for lb_circuit_transitions_total. */
  readonly transitions: Record<CircuitState, number> = { closed: 0, 'half-open': 0, open: 0 }
  /** Requests answered by the breaker itself. */
  rejected = 0
  private current: CircuitState = 'closed'
  private readonly window: SlidingWindow
  private openedAt = -1
  private halfOpenAt = 0
  /** The ratios and calls that last opened the circuit, shown while it is open. */
  private opened: { failureRatio: number, slowCallRatio: number, calls: number } = { failureRatio: 0, slowCallRatio: 0, calls: 0 }
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  // Half-open: since when, trial slots given and when the last one was, outcomes counted.
  private halfOpenSince = 0
  private granted = 0
  private grantedAt = 0
  private trialCalls = 0
  private trialFailures = 0
  private trialSlow = 0

  constructor (
    private readonly host: BreakerHost,
    readonly options: ResolvedCircuitBreaker,
    /** Monotonic ms, the clock tries measure their latency with. */
    private readonly clock: () => number = () => performance.now()
  ) {
    this.window = new SlidingWindow(options.window / 1000)
    host.onResult(this.onResult)
  }

  get state (): CircuitState {
    return this.current
  }

  /** Whether a request may go to an upstream now; a false is counted as a rejection. */
  admit (): boolean {
    return this.current === 'closed' || this.admitTripped()
  }

  /** Seconds a refused client is asked to wait: until half-open, at least 1. */
  retryAfterSeconds (): number {
    if (this.current !== 'open') return 1
    return Math.max(1, Math.ceil((this.halfOpenAt - this.clock()) / 1000))
  }

  snapshot (): CircuitSnapshot {
    const now = this.clock()
    let counts = this.opened
    if (this.current === 'closed') {
      const w = this.window
      w.advance(now)
      counts = { failureRatio: ratio(w.failures, w.calls), slowCallRatio: ratio(w.slow, w.calls), calls: w.calls }
    } else if (this.current === 'half-open') {
      const n = this.trialCalls
      counts = { failureRatio: ratio(this.trialFailures, n), slowCallRatio: ratio(this.trialSlow, n), calls: n }
    }
    return {
      state: this.current,
      ...counts,
      rejected: this.rejected,
      openedMsAgo: this.openedAt < 0 ? null : now - this.openedAt,
      halfOpenInMs: this.current === 'open' ? Math.max(0, this.halfOpenAt - now) : null
    }
  }

  /** Stops the timer of an open circuit (the gateway closes). */
  stop (): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  private admitTripped (): boolean {
    const now = this.clock()
    // The timer may not have run yet when openFor is over.
    if (this.current === 'open' && now >= this.halfOpenAt) this.halfOpen(now)
    if (this.current === 'half-open') {
      if (this.granted < this.options.halfOpenRequests) {
        this.granted++
        this.grantedAt = now
        return true
      }
      // A sent try reports within the pool's timeout. A trial that has not since the last slot was given may never
      // have been sent (its client left first, its path was refused): its slot is given again rather than hold the
      // circuit half-open for ever.
      if (now - this.grantedAt >= this.host.options.timeout) {
        this.granted = this.trialCalls + 1
        this.grantedAt = now
        return true
      }
    }
    this.rejected++
    return false
  }

  /** Counts the tries that judge an upstream: an answer (a 5xx failing) or connect, timeout and reset; not a client that left nor the gateway's own failures. */
  private readonly onResult = (_target: object, status: number, failure: string | null, latencyMs: number): void => {
    const state = this.current
    if (state === 'open') return
    const counted = failure === null || failure === 'connect' || failure === 'timeout' || failure === 'reset'
    const now = this.clock()
    if (state === 'half-open') {
      // A try sent before the circuit opened is no trial.
      if (now - latencyMs < this.halfOpenSince) return
      if (!counted) {
        if (this.granted > this.trialCalls) this.granted--
        return
      }
    } else if (!counted) return
    const failed = failure !== null || status >= 500
    const slow = latencyMs > this.options.slowCallMs
    if (state === 'closed') this.countClosed(now, failed, slow)
    else this.countTrial(now, failed, slow)
  }

  private countClosed (now: number, failed: boolean, slow: boolean): void {
    const w = this.window
    w.add(now, failed, slow)
    if (w.calls < this.options.minRequests) return
    const failureRatio = w.failures / w.calls
    const slowCallRatio = w.slow / w.calls
    if (this.trips(failureRatio, slowCallRatio)) this.open(now, failureRatio, slowCallRatio, w.calls)
  }

  private countTrial (now: number, failed: boolean, slow: boolean): void {
    const n = ++this.trialCalls
    if (failed) this.trialFailures++
    if (slow) this.trialSlow++
    if (n < this.options.halfOpenRequests) return
    const failureRatio = this.trialFailures / n
    const slowCallRatio = this.trialSlow / n
    if (this.trips(failureRatio, slowCallRatio)) this.open(now, failureRatio, slowCallRatio, n)
    else this.close(failureRatio, slowCallRatio, n)
  }

  /** resilience4j's rule: a ratio equal to its threshold trips too. */
  private trips (failureRatio: number, slowCallRatio: number): boolean {
    return failureRatio >= this.options.failureRatio || slowCallRatio >= this.options.slowCallRatio
  }

  private open (now: number, failureRatio: number, slowCallRatio: number, calls: number): void {
    const from = this.current
    this.current = 'open'
    this.openedAt = now
    this.halfOpenAt = now + this.options.openFor
    this.opened = { failureRatio, slowCallRatio, calls }
    this.window.reset()
    if (!this.stopped) {
      this.timer = setTimeout(() => this.halfOpen(this.clock()), this.options.openFor)
      this.timer.unref()
    }
    this.changed(from, failureRatio, slowCallRatio, calls)
  }

  private halfOpen (now: number): void {
    if (this.current !== 'open') return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.current = 'half-open'
    this.halfOpenSince = now
    this.grantedAt = now
    this.granted = 0
    this.trialCalls = 0
    this.trialFailures = 0
    this.trialSlow = 0
    this.changed('open', null, null, 0)
  }

  private close (failureRatio: number, slowCallRatio: number, calls: number): void {
    this.current = 'closed'
    this.window.reset()
    this.changed('half-open', failureRatio, slowCallRatio, calls)
  }

  private changed (from: CircuitState, failureRatio: number | null, slowCallRatio: number | null, calls: number): void {
    const to = this.current
    this.transitions[to]++
    this.host.emit('circuit', { from, to, failureRatio, slowCallRatio, calls })
  }
}
