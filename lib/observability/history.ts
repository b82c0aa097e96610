import type { LoadBalancer } from '../route/load-balancer'
import type { MembershipChange, Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import type { HistogramSeries } from './live-metrics'
import type { LbMetrics } from './metrics'
import type { ResolvedHistoryOptions } from './options'
import { bucketQuantile } from './quantile'
import { Ring } from './ring'
import type { HistoryReport, TargetHistory } from './status-report'

/** A member's counters when it was last sampled. */
interface Seen {
  target: Target
  requests: number
  failures: number
}

/** The history of one target id in one pool (two members share it while one drains). */
class IdSeries {
  readonly requests: Ring
  readonly errors: Ring
  readonly p99: Ring | null
  /** The members' counters at the last sample; a member missing here joined since, from zero. */
  seen: Seen[] = []
  /** The list the pass before kept, reused so a pass allocates nothing for members that stay. */
  previous: Seen[] = []
  /** The histogram the last sample read, and its bucket counts then. */
  latency: HistogramSeries | undefined = undefined
  latencySeen: Float64Array | null = null
  /** The pass that last found the id in its pool. */
  pass = 0
  /** Counts since the last sample, summed over members during a pass. */
  newRequests = 0
  newFailures = 0

  constructor (samples: number, withLatency: boolean) {
    this.requests = new Ring(samples)
    this.errors = new Ring(samples)
    this.p99 = withLatency ? new Ring(samples) : null
  }
}

function milli (value: number | null): number | null {
  return value === null ? null : Math.round(value * 1000) / 1000
}

/**
 * Samples every target's counters on a timer and keeps, per target id, the
 * requests and errors per second and the p99 latency of each interval in
 * fixed rings. It reads what tries already count (the targets' counters and
 * the metrics' latency histograms) and stores deltas, so the request path does
 * no work for it. An id that leaves its pool drops its series; a new one
 * starts empty.
 */
export class StatusHistory {
  readonly intervalMs: number
  readonly samples: number
  private readonly sampledAt: Ring
  private readonly pools = new Map<Pool, Map<string, IdSeries>>()
  /** Bucket count differences of one histogram, reused by every id. */
  private readonly delta: Float64Array
  private timer: NodeJS.Timeout | null = null
  private lastAt = 0
  private passes = 0

  constructor (lb: LoadBalancer, options: ResolvedHistoryOptions, private readonly metrics: LbMetrics | null) {
    this.intervalMs = options.intervalMs
    this.samples = options.samples
    this.sampledAt = new Ring(options.samples)
    this.delta = new Float64Array((metrics?.bounds.length ?? 0) + 1)
    lb.eachPool((pool) => {
      const byId = new Map<string, IdSeries>()
      this.pools.set(pool, byId)
      // An id that leaves drops its series at once: were it back before the next sample, it would start afresh all the same.
      pool.on('change', (change: MembershipChange) => {
        for (const t of change.removed) if (pool.get(t.id) === undefined) byId.delete(t.id)
      })
    })
  }

  /** Takes the counters as they are now as the start, and samples every interval until stop(). */
  start (): void {
    if (this.timer !== null) return
    this.pass(performance.now(), false)
    this.timer = setInterval(() => this.sample(), this.intervalMs)
    // A status page never keeps a process alive.
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** @internal Records one sample now (the timer calls it; a test may too). */
  sample (): void {
    this.sampledAt.push(Date.now())
    this.pass(performance.now(), true)
  }

  /** The history of every pool's current targets, in the order the status report lists them. */
  report (): HistoryReport {
    const pools: HistoryReport['pools'] = []
    for (const [pool, series] of this.pools) {
      const targets: TargetHistory[] = []
      let last = ''
      for (const target of pool.targets) {
        // Members are sorted by id: those sharing an id are neighbours.
        if (target.id === last) continue
        last = target.id
        targets.push(this.targetHistory(target.id, series.get(target.id)))
      }
      pools.push({ name: pool.name, targets })
    }
    return { intervalMs: this.intervalMs, samples: this.samples, latency: this.metrics !== null, sampledAt: this.sampledAt.toArray() as number[], pools }
  }

  private targetHistory (id: string, s: IdSeries | undefined): TargetHistory {
    const history: TargetHistory = {
      id,
      requestsPerSecond: (s?.requests.toArray() ?? []).map(milli) as number[],
      errorsPerSecond: (s?.errors.toArray() ?? []).map(milli) as number[]
    }
    if (this.metrics !== null) history.p99Ms = (s?.p99?.toArray() ?? []).map(milli)
    return history
  }

  /** Reads every member's counters; `record` false only takes them as the start. */
  private pass (now: number, record: boolean): void {
    const pass = ++this.passes
    // Two samples in the same millisecond (a test calling sample()) must not divide by zero.
    const seconds = Math.max(now - this.lastAt, 1) / 1000
    this.lastAt = now
    for (const [pool, byId] of this.pools) {
      for (const target of pool.targets) this.count(byId, target, pass)
      for (const [id, s] of byId) {
        if (s.pass !== pass) {
          byId.delete(id)
          continue
        }
        const p99 = this.latencyOf(pool, id, s)
        if (!record) continue
        s.requests.push(s.newRequests / seconds)
        s.errors.push(s.newFailures / seconds)
        s.p99?.push(p99)
      }
    }
  }

  /** Adds what a member counted since the last pass to its id's series. */
  private count (byId: Map<string, IdSeries>, target: Target, pass: number): void {
    let s = byId.get(target.id)
    if (s === undefined) {
      s = new IdSeries(this.samples, this.metrics !== null)
      byId.set(target.id, s)
    }
    if (s.pass !== pass) {
      s.pass = pass
      s.newRequests = 0
      s.newFailures = 0
      // Members that left since the last pass are not carried over.
      const last = s.seen
      s.seen = s.previous
      s.seen.length = 0
      s.previous = last
    }
    const seen = s.previous.find((x) => x.target === target) ?? { target, requests: 0, failures: 0 }
    s.seen.push(seen)
    s.newRequests += target.requests - seen.requests
    s.newFailures += target.failures - seen.failures
    seen.requests = target.requests
    seen.failures = target.failures
  }

  /** The p99 in ms of the answers the id's histogram counted since the last pass; NaN without one (or without metrics). */
  private latencyOf (pool: Pool, id: string, s: IdSeries): number {
    const h = this.metrics?.latencyOf(pool, id)
    if (h === undefined || this.metrics === null) return NaN
    const counts = h.counts
    // A histogram not read before was made since the last pass: all it holds is new.
    const before = h === s.latency ? s.latencySeen : null
    const delta = this.delta
    for (let i = 0; i < counts.length; i++) delta[i] = counts[i] - (before === null ? 0 : before[i])
    s.latency = h
    if (s.latencySeen === null || s.latencySeen.length !== counts.length) s.latencySeen = new Float64Array(counts.length)
    s.latencySeen.set(counts)
    return bucketQuantile(0.99, this.metrics.bounds, delta) * 1000
  }
}
