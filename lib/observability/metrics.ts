import { CIRCUIT_STATES } from '../breaker/breaker'
import { invalidOption } from '../errors'
import type { HealthRegistry } from '../health/registry'
import { HistogramSeries, LiveHistogram, liveMetric, type Emit, type Labels } from './live-metrics'
import type { MetricsRegistry, ResolvedMetricsOptions } from './options'
import type { FailureKind, MembershipChange, OverloadCounts, Pool, RetryCounts } from '../pool/pool'
import { UNAVAILABLE_REASONS } from '../forward/fallback-options'
import { MIRROR_RESULTS } from '../forward/mirror-options'
import { passesHealth } from '../pool/serving'
import type { Target } from '../pool/target'
import { TUNNEL_RESULTS } from '../pool/tunnels'
import type { Split } from '../route/split'

/**
 * Values of `code_class` in `lb_requests_total`: the upstream status class, 'error' when it did not answer,
 * 'aborted' when the client left first (nginx logs those as 499): a target is not to blame for them.
 */
export const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error', 'aborted'] as const
const ERROR_CLASS = 5
const ABORTED_CLASS = 6

type UpstreamError = Exclude<FailureKind, 'aborted'>
/** Values of `reason` in `lb_upstream_errors_total`, one per way a try can end without an answer but for the client leaving. */
const REASON_INDEX: Record<UpstreamError, number> = { connect: 0, timeout: 1, reset: 2, queue: 3 }
export const REASONS = Object.keys(REASON_INDEX) as UpstreamError[]

/** Values of `result` in `lb_affinity_total`. */
export const AFFINITY_RESULTS = ['hit', 'miss', 'reassigned', 'rejected', 'expired'] as const

/** Values of `result` in `lb_retries_total`: retries sent, and what became of the requests that were or would have been retried. */
export const RETRY_RESULTS = ['attempted', 'succeeded', 'budget_exhausted', 'limit_exceeded', 'deadline_exceeded'] as const satisfies ReadonlyArray<keyof RetryCounts>
const RETRIES_HELP = 'Retries by result: attempted (a try sent to another target after a try failed), ' +
  'succeeded (a retried request answered with a status retry.statuses does not hold), ' +
  'budget_exhausted (a retry with a target to go to that the retry budget refused), ' +
  'limit_exceeded (a retry refused because the request used up retry.attempts), ' +
  'deadline_exceeded (a request that retry.deadline ended: a retry refused or a back-off or try cut because the deadline passed).'

/** Values of `reason` in `lb_overloaded_total`. */
export const OVERLOAD_REASONS = ['full', 'queue_full', 'queue_timeout'] as const satisfies ReadonlyArray<keyof OverloadCounts>

/**
 * The counters of one target id in one pool. While a discovery update moves an
 * id to a new address, the draining old target and the new one share it, so
 * the id keeps one series and its counters go on.
 */
class TargetSeries {
  readonly labels: Labels
  /** The pool members with this id: one, or two while one drains. */
  readonly members: Target[] = []
  /** Tries by CODE_CLASSES index. */
  readonly codes = new Float64Array(CODE_CLASSES.length)
  /** Tries without an answer by REASON_INDEX. */
  readonly errors = new Float64Array(REASONS.length)
  readonly latency: HistogramSeries
  ejections = 0
  /** WebSocket upgrades by TUNNEL_RESULTS index. */
  readonly upgrades = new Float64Array(TUNNEL_RESULTS.length)
  /** Label sets per code class and per reason, made once so a scrape allocates none. */
  readonly codeLabels: Labels[]
  readonly reasonLabels: Labels[]
  readonly upgradeLabels: Labels[]

  constructor (pool: string, target: string, bounds: readonly number[]) {
    this.labels = { pool, target }
    this.latency = new HistogramSeries(this.labels, bounds)
    this.codeLabels = CODE_CLASSES.map((c) => ({ pool, target, code_class: c }))
    this.reasonLabels = REASONS.map((r) => ({ pool, target, reason: r }))
    this.upgradeLabels = TUNNEL_RESULTS.map((r) => ({ pool, target, result: r }))
  }

  /** The member whose state the gauges show: the one not draining, if any. */
  get current (): Target {
    const members = this.members
    for (let i = members.length - 1; i > 0; i--) if (!members[i].draining) return members[i]
    return members[0]
  }

  get inFlight (): number {
    let n = 0
    for (const t of this.members) n += t.inFlight
    return n
  }

  get tunnels (): number {
    let n = 0
    for (const t of this.members) n += t.tunnels
    return n
  }
}

class PoolSeries {
  readonly labels: Labels
  /**
   * Weak, and kept when a target leaves: a try's result may be recorded just
   * after its release let a draining target go, and still counts for its id.
   */
  readonly byTarget = new WeakMap<Target, TargetSeries>()
  readonly byId = new Map<string, TargetSeries>()
  readonly affinityLabels: Labels[]
  readonly retryLabels: Labels[]
  readonly overloadLabels: Labels[]
  readonly fallbackLabels: Labels[]
  readonly circuitLabels: Labels[]
  readonly mirrorLabels: Labels[]

  constructor (readonly pool: Pool) {
    const name = pool.name
    this.labels = { pool: name }
    this.affinityLabels = AFFINITY_RESULTS.map((r) => ({ pool: name, result: r }))
    this.retryLabels = RETRY_RESULTS.map((r) => ({ pool: name, result: r }))
    this.overloadLabels = OVERLOAD_REASONS.map((r) => ({ pool: name, reason: r }))
    this.fallbackLabels = UNAVAILABLE_REASONS.map((r) => ({ pool: name, reason: r }))
    this.circuitLabels = CIRCUIT_STATES.map((s) => ({ pool: name, to: s }))
    this.mirrorLabels = MIRROR_RESULTS.map((r) => ({ pool: name, result: r }))
  }

  /** The series of the pool's current members, once per id, in id order. */
  * series (): Generator<TargetSeries> {
    let last: TargetSeries | undefined
    for (const target of this.pool.targets) {
      const s = this.byTarget.get(target)
      // Members are sorted by id, so the members sharing a series are neighbours.
      if (s !== undefined && s !== last) yield s
      last = s
    }
  }

  join (target: Target, bounds: readonly number[]): void {
    if (this.byTarget.get(target)?.members.includes(target) === true) return
    let s = this.byId.get(target.id)
    if (s === undefined) {
      s = new TargetSeries(this.pool.name, target.id, bounds)
      this.byId.set(target.id, s)
    }
    s.members.push(target)
    this.byTarget.set(target, s)
  }

  /** Returns whether the id left the pool altogether. */
  leave (target: Target): boolean {
    const s = this.byTarget.get(target)
    const at = s === undefined ? -1 : s.members.indexOf(target)
    if (s === undefined || at === -1) return false
    s.members.splice(at, 1)
    if (s.members.length > 0) return false
    this.byId.delete(target.id)
    return true
  }
}

class CountedSeries {
  value = 0
  constructor (readonly labels: Labels) {}
}

function codeClass (status: number): number {
  if (status < 200) return 0
  if (status >= 500) return 4
  return Math.floor(status / 100) - 1
}

/**
 * The plugin's Prometheus metrics. Requests update plain counters owned by
 * this class (found through one WeakMap lookup per try); prom-client reads them,
 * and the live state of targets, only when scraped.
 */
export class LbMetrics {
  readonly registry: MetricsRegistry
  /** Upper bounds of the latency histogram, in seconds. */
  readonly bounds: readonly number[]
  private readonly pools: PoolSeries[] = []
  private readonly splits: Split[] = []
  private readonly byPool = new Map<Pool, PoolSeries>()
  private readonly checks = new Map<string, CountedSeries>()
  private readonly transitions = new Map<string, CountedSeries>()

  constructor (options: ResolvedMetricsOptions) {
    const registry = options.registry
    this.registry = registry
    this.bounds = options.buckets
    const p = options.prefix
    const names = ['requests_total', 'request_duration_seconds', 'in_flight_requests', 'target_healthy', 'target_weight',
      'target_enabled', 'upstream_errors_total', 'retries_total', 'no_target_total', 'health_checks_total', 'health_transitions_total',
      'ejections_total', 'affinity_total', 'target_priority', 'target_full', 'serving_tier', 'queue_length', 'overloaded_total',
      'fallback_total', 'circuit_state', 'circuit_transitions_total', 'websocket_connections', 'websocket_total', 'split_total', 'split_weight', 'mirror_total']
    for (const name of names) {
      if (registry.getSingleMetric(p + name) !== undefined) {
        throw invalidOption('(plugin)', 'metrics.prefix', p, `the registry already holds a metric named ${p + name}`)
      }
    }
    const perTarget = (fill: (emit: Emit, s: TargetSeries) => void) => (emit: Emit): void => {
      for (const pool of this.pools) for (const s of pool.series()) fill(emit, s)
    }

    liveMetric('counter', registry, p + 'requests_total',
      "Tries sent to a target, by the class of the upstream's status ('error': no answer, see upstream_errors_total; 'aborted': the client left first).",
      ['pool', 'target', 'code_class'], perTarget((emit, s) => {
        for (let i = 0; i < s.codes.length; i++) emit(s.codeLabels[i], s.codes[i])
      }))
    // eslint-disable-next-line no-new -- the registry keeps it
    new LiveHistogram(registry, p + 'request_duration_seconds',
      "Time from sending a try to the upstream's response headers, for tries that got an answer.",
      ['pool', 'target'], this.bounds, () => this.latencySeries())
    liveMetric('gauge', registry, p + 'in_flight_requests', 'Tries to a target waiting for or streaming an answer now.',
      ['pool', 'target'], perTarget((emit, s) => emit(s.labels, s.inFlight)))
    liveMetric('gauge', registry, p + 'websocket_connections', 'WebSocket tunnels open to a target now (each is also in in_flight_requests).',
      ['pool', 'target'], perTarget((emit, s) => emit(s.labels, s.tunnels)))
    liveMetric('counter', registry, p + 'websocket_total',
      'WebSocket upgrades sent to a target, by result: upgraded (it switched protocols), rejected (it answered another status, passed on), failed (no answer).',
      ['pool', 'target', 'result'], perTarget((emit, s) => {
        for (let i = 0; i < s.upgrades.length; i++) emit(s.upgradeLabels[i], s.upgrades[i])
      }))
    liveMetric('gauge', registry, p + 'target_healthy', '1 when the target passes its health checks and is not ejected, else 0.',
      ['pool', 'target'], perTarget((emit, s) => {
        emit(s.labels, passesHealth(s.current) ? 1 : 0)
      }), 'min')
    liveMetric('gauge', registry, p + 'target_enabled', '1 unless the target is disabled for maintenance (pool.disable), else 0.',
      ['pool', 'target'], perTarget((emit, s) => emit(s.labels, s.current.enabled ? 1 : 0)), 'min')
    liveMetric('gauge', registry, p + 'target_weight', 'The weight balancing uses for the target now (below the configured one during slow start).',
      ['pool', 'target'], perTarget((emit, s) => emit(s.labels, s.current.effectiveWeight)), 'average')
    liveMetric('gauge', registry, p + 'target_priority', 'The tier of the target: 0 serves first, higher ones while those before them cannot.',
      ['pool', 'target'], perTarget((emit, s) => emit(s.labels, s.current.priority)), 'max')
    liveMetric('gauge', registry, p + 'target_full', '1 while the target holds its maxConnections requests and takes no more, else 0.',
      ['pool', 'target'], perTarget((emit, s) => emit(s.labels, s.current.full ? 1 : 0)), 'max')
    liveMetric('gauge', registry, p + 'serving_tier', 'The priority of the tier taking the pool\'s requests now; -1 when none can.',
      ['pool'], (emit) => {
        for (const pool of this.pools) emit(pool.labels, pool.pool.servingTier)
      }, 'max')
    liveMetric('gauge', registry, p + 'queue_length', 'Requests waiting in the pool\'s queue for a slot (pools with a queue).',
      ['pool'], (emit) => {
        for (const pool of this.pools) {
          const waiting = pool.pool.waiting
          if (waiting !== null) emit(pool.labels, waiting.length)
        }
      })
    liveMetric('counter', registry, p + 'overloaded_total',
      'Requests answered 503 FST_LB_OVERLOADED (or by a fallback) because every target was full: full (no queue), queue_full, queue_timeout.',
      ['pool', 'reason'], (emit) => {
        for (const pool of this.pools) {
          const counts = pool.pool.overloaded
          OVERLOAD_REASONS.forEach((r, i) => emit(pool.overloadLabels[i], counts[r]))
        }
      })
    liveMetric('counter', registry, p + 'fallback_total', 'Requests the pool\'s fallback served, by why the pool could not (no_target, circuit_open, overloaded, failed).',
      ['pool', 'reason'], (emit) => {
        for (const pool of this.pools) {
          if (pool.pool.options.fallback === null) continue
          const counts = pool.pool.fallbacks
          UNAVAILABLE_REASONS.forEach((r, i) => emit(pool.fallbackLabels[i], counts[r]))
        }
      })
    liveMetric('counter', registry, p + 'upstream_errors_total', 'Tries that got no answer from a target, by reason (connect, timeout, reset, queue: no connection to it within the timeout).',
      ['pool', 'target', 'reason'], perTarget((emit, s) => {
        for (let i = 0; i < s.errors.length; i++) emit(s.reasonLabels[i], s.errors[i])
      }))
    liveMetric('counter', registry, p + 'ejections_total', 'Times outlier detection ejected a target.',
      ['pool', 'target'], perTarget((emit, s) => emit(s.labels, s.ejections)))
    liveMetric('counter', registry, p + 'retries_total', RETRIES_HELP,
      ['pool', 'result'], (emit) => {
        for (const pool of this.pools) {
          const counts = pool.pool.retries
          RETRY_RESULTS.forEach((r, i) => emit(pool.retryLabels[i], counts[r]))
        }
      })
    liveMetric('counter', registry, p + 'no_target_total', 'Requests answered 503 because no target of the pool was eligible.',
      ['pool'], (emit) => {
        for (const pool of this.pools) emit(pool.labels, pool.pool.noTarget)
      })
    liveMetric('counter', registry, p + 'affinity_total', 'Requests of pools with affinity, by what became of the affinity cookie (hit, miss, reassigned, rejected, expired).',
      ['pool', 'result'], (emit) => {
        for (const pool of this.pools) {
          const counts = pool.pool.affinity?.counts
          if (counts !== undefined) AFFINITY_RESULTS.forEach((r, i) => emit(pool.affinityLabels[i], counts[r]))
        }
      })
    liveMetric('gauge', registry, p + 'circuit_state', "State of the pool's circuit breaker: 0 closed, 1 half-open, 2 open.",
      ['pool'], (emit) => {
        for (const pool of this.pools) {
          const breaker = pool.pool.breaker
          if (breaker !== null) emit(pool.labels, CIRCUIT_STATES.indexOf(breaker.state))
        }
      }, 'max')
    liveMetric('counter', registry, p + 'circuit_transitions_total', "Changes of state of the pool's circuit breaker, by the state it changed to.",
      ['pool', 'to'], (emit) => {
        for (const pool of this.pools) {
          const counts = pool.pool.breaker?.transitions
          if (counts !== undefined) CIRCUIT_STATES.forEach((s, i) => emit(pool.circuitLabels[i], counts[s]))
        }
      })
    liveMetric('counter', registry, p + 'mirror_total',
      'Copies of the pool\'s requests sent to its mirror pool, by result: answered, failed, timeout, skipped (a body over maxBody, or no target in the mirror pool).',
      ['pool', 'result'], (emit) => {
        for (const pool of this.pools) {
          const counts = pool.pool.mirrored
          if (counts !== null) MIRROR_RESULTS.forEach((r, i) => emit(pool.mirrorLabels[i], counts[r]))
        }
      })
    liveMetric('counter', registry, p + 'split_total', 'Requests a route\'s split sent to each pool (match rules included).',
      ['route', 'pool'], (emit) => {
        for (const split of this.splits) for (const b of split.branches) emit({ route: split.route, pool: b.pool }, b.requests)
      })
    liveMetric('gauge', registry, p + 'split_weight', 'The weight of each arm of a route\'s split now.',
      ['route', 'pool'], (emit) => {
        for (const split of this.splits) for (const arm of split.armList) emit({ route: split.route, pool: arm.pool }, arm.weight)
      }, 'max')
    liveMetric('counter', registry, p + 'health_checks_total', 'Active health checks of a target, by check type and result (success, failure).',
      ['target', 'type', 'result'], (emit) => {
        for (const s of this.checks.values()) emit(s.labels, s.value)
      })
    liveMetric('counter', registry, p + 'health_transitions_total', 'Health changes of a target, by the state it changed to.',
      ['target', 'to'], (emit) => {
        for (const s of this.transitions.values()) emit(s.labels, s.value)
      })
  }

  private * latencySeries (): Generator<HistogramSeries> {
    for (const pool of this.pools) for (const s of pool.series()) yield s.latency
  }

  /** Starts counting a pool's tries, retries and ejections. */
  attach (pool: Pool): void {
    const ps = new PoolSeries(pool)
    this.pools.push(ps)
    this.byPool.set(pool, ps)
    const bounds = this.bounds
    const byTarget = ps.byTarget
    for (const t of pool.targets) ps.join(t, bounds)
    pool.on('change', (change: MembershipChange) => {
      for (const t of change.added) ps.join(t, bounds)
      for (const t of change.removed) if (ps.leave(t)) this.forgetHealth(t.id)
    })
    pool.onResult((target, status, failure, latencyMs) => {
      const s = byTarget.get(target)
      if (s === undefined) return
      if (failure === 'aborted') {
        s.codes[ABORTED_CLASS]++
        return
      }
      if (status === 0 || failure !== null) {
        s.codes[ERROR_CLASS]++
        s.errors[REASON_INDEX[failure ?? 'reset']]++
        return
      }
      s.codes[codeClass(status)]++
      s.latency.observe(latencyMs / 1000)
    })
    pool.tunnels.onResult((target, result) => {
      const s = byTarget.get(target)
      if (s !== undefined) s.upgrades[TUNNEL_RESULTS.indexOf(result)]++
    })
    pool.on('eject', (target: Target, _until: number, peer: boolean) => {
      const s = byTarget.get(target)
      // Counted by the worker that decided it, so that summed over a cluster's workers each ejection counts once.
      if (s !== undefined && !peer) s.ejections++
    })
  }

  /** The latency histogram of a pool's target id, while the id is in the pool (read by the status page's history). */
  latencyOf (pool: Pool, id: string): HistogramSeries | undefined {
    return this.byPool.get(pool)?.byId.get(id)?.latency
  }

  /** Reports a route's split. */
  attachSplit (split: Split): void {
    this.splits.push(split)
  }

  /** Counts the active checks and health transitions a health registry reports. */
  watchHealth (health: HealthRegistry): void {
    health.on('check', (event) => {
      const result = event.ok ? 'success' : 'failure'
      this.count(this.checks, `${event.id}\n${event.type}\n${result}`, { target: event.id, type: event.type, result })
    })
    health.on('transition', (event) => {
      // Counted where the checks run, so that summed over a cluster's workers each transition counts once.
      if (!health.checking) return
      this.count(this.transitions, `${event.id}\n${event.to}`, { target: event.id, to: event.to })
    })
  }

  /** Drops the health series of a target that left every pool, so churning membership does not grow them forever. */
  private forgetHealth (id: string): void {
    for (const pool of this.pools) if (pool.pool.get(id) !== undefined) return
    for (const map of [this.checks, this.transitions]) {
      for (const [key, s] of map) if (s.labels.target === id) map.delete(key)
    }
  }

  private count (map: Map<string, CountedSeries>, key: string, labels: Labels): void {
    let s = map.get(key)
    if (s === undefined) {
      s = new CountedSeries(labels)
      map.set(key, s)
    }
    s.value++
  }
}
