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
}

/** A pool's side of a monitor: told after each check, once the target's fields are up to date. */
export interface HealthWatcher {
  /** A check ended: `healthy` is the state it leaves, `lastCheck` the check itself. */
  checked: (target: Target, ok: boolean, changed: boolean, healthy: boolean, lastCheck: LastCheck) => void
}

/** Where a monitor reports; the registry turns reports into events and log lines. */
export interface MonitorReport {
  transition: (event: TransitionEvent) => void
  check: (event: CheckEvent) => void
}

/** The delay before the next check: interval x (1 +- jitter), less what the last check took. */
export function nextDelay (interval: number, jitter: number, tookMs: number, random: () => number = Math.random): number {
  const drawn = interval * (1 + jitter * (2 * random() - 1))
  return Math.max(0, drawn - tookMs)
}

/**
 * The health state machine of one target URL under one check configuration,
 * shared by every pool that has a target with that URL. Checks of one monitor
 * never overlap: the next is scheduled only when the last one has ended.
 */
export class Monitor {
  readonly id: string
  readonly url: string
  readonly check: ResolvedHealthCheck
  healthy: boolean
  /** Consecutive passing and failed checks. */
  passes = 0
  fails = 0
  lastCheck: LastCheck | null = null
  readonly watchers = new Map<Target, HealthWatcher>()
  private readonly endpoint: CheckEndpoint
  private readonly tls: ResolvedTls
  private readonly report: MonitorReport
  private timer: NodeJS.Timeout | null = null
  private cancel: CancelCheck | null = null
  private stopped = false

  constructor (target: Target, check: ResolvedHealthCheck, tls: ResolvedTls, report: MonitorReport) {
    this.id = target.id
    this.url = target.url
    this.check = check
    this.healthy = check.initialState === 'healthy'
    this.endpoint = endpointOf(target.origin, target.basePath, check.port)
    this.tls = tls
    this.report = report
  }

  /** Runs the first check now; later checks follow on their own. */
  start (): void {
    if (this.stopped || this.timer !== null || this.cancel !== null) return
    this.schedule(0)
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
    const done: CheckDone = (error) => {
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
    const first = this.lastCheck === null
    if (ok) {
      this.passes++
      this.fails = 0
    } else {
      this.fails++
      this.passes = 0
    }
    const last: LastCheck = ok ? { at: Date.now(), ok } : { at: Date.now(), ok, error }
    this.lastCheck = last
    const from = this.healthy
    // The first check decides alone: before it the state is a guess, not a history to smooth.
    const to = first
      ? ok
      : from ? this.fails < this.check.unhealthyThreshold : this.passes >= this.check.healthyThreshold
    const changed = to !== from
    this.healthy = to
    // Scheduled before anyone is told, so a throwing listener cannot end the checks.
    if (!this.stopped) this.schedule(nextDelay(this.check.interval, this.check.jitter, durationMs))
    for (const [target, watcher] of this.watchers) watcher.checked(target, ok, changed, to, last)
    if (changed) {
      const reason = first
        ? (ok ? 'first check passed' : `first check failed: ${error}`)
        : (ok ? `${this.passes} consecutive passing checks` : `${this.fails} consecutive failed checks, last: ${error}`)
      this.report.transition({ id: this.id, url: this.url, from: from ? 'healthy' : 'unhealthy', to: to ? 'healthy' : 'unhealthy', reason })
    }
    const event: CheckEvent = { id: this.id, url: this.url, type: this.check.type, ok, durationMs }
    if (!ok) event.error = error
    this.report.check(event)
  }
}
