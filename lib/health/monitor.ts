import type { LastCheck, Target } from '../pool/target'
import { describeSocketError, endpointOf, type CancelCheck, type CheckDone, type CheckEndpoint } from './checks/endpoint'
import { httpCheck } from './checks/http'
import type { ResolvedTls } from '../options/tls'
import type { ResolvedHealthCheck } from './options'
import { tcpCheck } from './checks/tcp'

export type HealthState = 'healthy' | 'unhealthy'

/** Emitted by the registry after every active check. */
export interface CheckEvent {
  id: string
  url: string
  type: 'http' | 'tcp'
  /** The check's index in the `healthCheck` list of the pool that registered it first (0 for a single check). */
  check: number
  ok: boolean
  error?: string
  durationMs: number
}

/** Emitted by the registry when a target's active-check state changes. */
export interface TransitionEvent {
  id: string
  url: string
  from: HealthState
  to: HealthState
  reason: string
  /** The check whose result changed the state: its index in the target's `healthCheck` list (0 for a single check). */
  check: number
  type: 'http' | 'tcp'
}

/** A pool's side of a target's checks: told after each check, once the target's fields are up to date. */
export interface HealthWatcher {
  /**
   * A check ended: `ok` when it passed and no other check of the target last
   * failed; `healthy` is the state the target is left in, `lastCheck` what explains it.
   */
  checked: (target: Target, ok: boolean, changed: boolean, healthy: boolean, lastCheck: LastCheck) => void
}

/** The state a check new to a target starts from when the target already has one (pool.configure changed its checks). */
export interface HealthSeed {
  healthy: boolean
  lastCheck: LastCheck | null
}

/** Who follows a monitor: the check lists that include its check. */
export interface MonitorListener {
  /** `reason` says why the monitor is in its state now, for a transition it may cause. */
  checked: (monitor: Monitor, ok: boolean, reason: string) => void
}

/**
 * What a check left a monitor in: enough for the monitor of the same URL and
 * check in another process to take the same state (cluster mode, docs/cluster.md).
 */
export interface MonitorState {
  healthy: boolean
  passes: number
  fails: number
  lastCheck: LastCheck | null
  /** Whether the check passed, and why the monitor is in its state now. */
  ok: boolean
  reason: string
}

/** The delay before the next check: interval x (1 +- jitter), less what the last check took. */
export function nextDelay (interval: number, jitter: number, tookMs: number, random: () => number = Math.random): number {
  const drawn = interval * (1 + jitter * (2 * random() - 1))
  return Math.max(0, drawn - tookMs)
}

/**
 * The health state machine of one target URL under one check configuration,
 * shared by every pool that has a target with that URL and that check. Checks
 * of one monitor never overlap: the next is scheduled only when the last one
 * has ended, after `interval` or, while this check sees the target unhealthy,
 * `unhealthyInterval`.
 */
export class Monitor {
  readonly id: string
  readonly url: string
  /** The URL and check: the same in every process with this monitor. */
  readonly key: string
  readonly check: ResolvedHealthCheck
  /** The check's index in the list of the pool that registered it first. */
  readonly index: number
  healthy: boolean
  /** Consecutive passing and failed checks. */
  passes = 0
  fails = 0
  lastCheck: LastCheck | null = null
  readonly listeners = new Set<MonitorListener>()
  private readonly endpoint: CheckEndpoint
  private readonly tls: ResolvedTls
  private readonly report: (event: CheckEvent, state: MonitorState, monitor: Monitor) => void
  private timer: NodeJS.Timeout | null = null
  private cancel: CancelCheck | null = null
  private stopped = false
  /** Counts pauses: a check that began before the last one is not reported. */
  private round = 0
  /** Whether the state is a guess: then the first check decides alone. A seeded state is a history to smooth. */
  private guessed: boolean

  constructor (target: Target, key: string, check: ResolvedHealthCheck, index: number, tls: ResolvedTls, report: Monitor['report'], seed?: HealthSeed) {
    this.id = target.id
    this.url = target.url
    this.key = key
    this.check = check
    this.index = index
    this.healthy = seed?.healthy ?? check.initialState === 'healthy'
    this.guessed = seed === undefined
    this.endpoint = endpointOf(target.origin, target.basePath, check.port)
    this.tls = tls
    this.report = report
  }

  /**
   * Runs the first check now, or, for a monitor that took its state from
   * another process, one interval after that process's last check; later
   * checks follow on their own.
   */
  start (): void {
    if (this.stopped || this.timer !== null || this.cancel !== null) return
    const last = this.lastCheck
    const interval = this.healthy ? this.check.interval : this.check.unhealthyInterval
    this.schedule(last === null ? 0 : Math.max(0, last.at + interval - Date.now()))
  }

  /** Takes the state another process's monitor of the same key reached, without telling anyone (before anyone follows it). */
  seed (state: MonitorState): void {
    this.healthy = state.healthy
    this.passes = state.passes
    this.fails = state.fails
    this.lastCheck = state.lastCheck === null ? null : { ...state.lastCheck, check: this.index }
    this.guessed = state.lastCheck === null
  }

  /** Takes a state another process's check reached, and tells those that follow this monitor, as a check of its own would. */
  adopt (state: MonitorState): void {
    this.seed(state)
    for (const listener of this.listeners) listener.checked(this, state.ok, state.reason)
  }

  /** Cluster mode: another process checks from now on; start() resumes after its last reported check. */
  pause (): void {
    this.round++
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    const cancel = this.cancel
    this.cancel = null
    if (cancel !== null) cancel()
  }

  /** The state to hand another process that takes the checks over; null before any check. */
  state (): MonitorState | null {
    const last = this.lastCheck
    if (last === null) return null
    return { healthy: this.healthy, passes: this.passes, fails: this.fails, lastCheck: last, ok: last.ok, reason: last.ok ? 'last check passed' : `last check failed: ${last.error ?? 'error'}` }
  }

  /** Stops the timer and any check in flight; the monitor is not used again. */
  stop (): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    const cancel = this.cancel
    this.cancel = null
    if (cancel !== null) cancel()
  }

  private schedule (delay: number): void {
    this.timer = setTimeout(this.run, delay)
    this.timer.unref()
  }

  private readonly run = (): void => {
    this.timer = null
    const started = performance.now()
    const round = this.round
    const done: CheckDone = (error) => {
      if (round !== this.round) return
      this.cancel = null
      if (!this.stopped) this.finish(error, performance.now() - started)
    }
    try {
      this.cancel = this.check.type === 'tcp'
        ? tcpCheck(this.endpoint, this.check.timeout, done)
        : httpCheck(this.endpoint, this.check, this.tls, done)
    } catch (err) {
      // A check that cannot even start (a socket option the platform refuses) fails; it must not end the timer chain.
      done(describeSocketError(err))
    }
  }

  private finish (error: string | undefined, durationMs: number): void {
    const ok = error === undefined
    const first = this.guessed
    this.guessed = false
    if (ok) {
      this.passes++
      this.fails = 0
    } else {
      this.fails++
      this.passes = 0
    }
    const at = Date.now()
    const last: LastCheck = ok ? { at, ok, check: this.index, type: this.check.type } : { at, ok, error, check: this.index, type: this.check.type }
    this.lastCheck = last
    const from = this.healthy
    // The first check decides alone: before it the state is a guess, not a history to smooth.
    const to = first
      ? ok
      : from ? this.fails < this.check.unhealthyThreshold : this.passes >= this.check.healthyThreshold
    this.healthy = to
    // Scheduled before anyone is told, so a throwing listener cannot end the checks.
    if (!this.stopped) this.schedule(nextDelay(to ? this.check.interval : this.check.unhealthyInterval, this.check.jitter, durationMs))
    const reason = first
      ? (ok ? 'first check passed' : `first check failed: ${error}`)
      : (ok ? `${this.passes} consecutive passing checks` : `${this.fails} consecutive failed checks, last: ${error}`)
    for (const listener of this.listeners) listener.checked(this, ok, reason)
    const event: CheckEvent = { id: this.id, url: this.url, type: this.check.type, check: this.index, ok, durationMs }
    if (!ok) event.error = error
    this.report(event, { healthy: to, passes: this.passes, fails: this.fails, lastCheck: last, ok, reason }, this)
  }
}
