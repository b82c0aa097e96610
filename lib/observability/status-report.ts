import type { TargetState } from '../pool/target'
import type { UnavailableReason } from '../forward/fallback-options'
import type { CircuitState } from '../breaker/breaker'
import type { AdminChange } from '../admin/changes'

/** The shape of /lb/status in JSON, which the HTML page renders too. */
export interface TargetStatus {
  id: string
  /** Left out when the status option hideUrls is set. */
  url?: string
  state: TargetState
  /** Whether the balancer may pick it for new requests now. */
  eligible: boolean
  weight: number
  effectiveWeight: number
  inFlight: number
  /** Open WebSocket tunnels (each also counts in inFlight). */
  tunnels: number
  requests: number
  /** Tries the target answers for: no connection, no answer in time, a broken answer, a 5xx. */
  failures: number
  /** Tries cut because the client left or stopped reading: not counted as failures. */
  aborted: number
  /** Latency EWMA in ms as balancing sees it now; null before the first answer. */
  ewmaMs: number | null
  /** The check that explains the state (docs/health.md): `check` is its index in the pool's `healthCheck` list. */
  lastCheck: { at: number, ok: boolean, error?: string, check: number, type: 'http' | 'tcp' } | null
  /** Epoch ms; null when not ejected. */
  ejectedUntil: number | null
  /** Epoch ms; null when not in slow start. */
  slowStartUntil: number | null
  /** Its tier: 0 serves first. */
  priority: number
  /** Its limit of requests in flight; 0 for none. */
  maxConnections: number
  /** At its limit: takes no new request until one ends. */
  full: boolean
  /** Cluster mode: each worker's requests in flight to the target (inFlight is their sum). */
  workers?: Array<{ worker: number, inFlight: number }>
}

/** A pool's circuit breaker (docs/circuit-breaker.md). */
export interface CircuitStatus {
  state: CircuitState
  /** Of the window while closed, of the trials so far while half-open, of the calls that opened it while open. */
  failureRatio: number
  slowCallRatio: number
  calls: number
  /** Requests the breaker answered itself. */
  rejected: number
  /** Epoch ms of the last opening; null if it never opened. */
  openedAt: number | null
  /** Epoch ms at which an open circuit lets trial requests through; null unless open. */
  halfOpenAt: number | null
}

export interface PoolStatus {
  name: string
  algorithm: string
  /** Members that may take new requests. */
  eligible: number
  /** Too few targets are healthy (panicThreshold): requests go to every target that is not draining. */
  panic: boolean
  inFlight: number
  /** Requests answered 503 for lack of an eligible target. */
  noTarget: number
  /** The priority of the tier taking requests now; -1 when none can. */
  servingTier: number
  /** The pool's limit of requests in flight; 0 for none. */
  maxInFlight: number
  /** Requests waiting in the queue now; null without a queue. */
  queued: number | null
  /** Requests refused because every target was full, by reason (lb_overloaded_total). */
  overloaded: { full: number, queueFull: number, queueTimeout: number }
  /** Requests the fallback served, by reason; null without a fallback. */
  fallbacks: Record<UnavailableReason, number> | null
  /** What became of retries so far, as lb_retries_total counts them (docs/observability.md). */
  retries: { attempted: number, succeeded: number, budgetExhausted: number, limitExceeded: number, deadlineExceeded: number }
  /** Null when the pool has no circuit breaker. */
  circuit: CircuitStatus | null
  targets: TargetStatus[]
}

/**
 * One target's recent history, a value per sampling interval, oldest first.
 * The arrays end at the latest sample and are shorter than `sampledAt` when the
 * target joined after sampling began.
 */
export interface TargetHistory {
  id: string
  /** Requests sent to the target per second over each interval. */
  requestsPerSecond: number[]
  /** Tries the target failed (as `failures` counts them) per second over each interval. */
  errorsPerSecond: number[]
  /**
   * The 99th percentile of answer latency over each interval in ms, from the
   * latency histogram's buckets; null for an interval without an answer.
   * Absent when metrics are off (the histogram is theirs).
   */
  p99Ms?: Array<number | null>
}

/** The recent history of every target, sampled every `intervalMs`. */
export interface HistoryReport {
  intervalMs: number
  /** Samples kept per series: the history spans intervalMs x samples once full. */
  samples: number
  /** Whether targets have p99Ms: the latency histogram is the metrics', so not with metrics off. */
  latency: boolean
  /** When each sample was taken, epoch ms, oldest first. */
  sampledAt: number[]
  pools: Array<{ name: string, targets: TargetHistory[] }>
}

export interface StatusReport {
  /** Epoch ms. */
  generatedAt: number
  pools: PoolStatus[]
  /** Null when the status option history is false. */
  history: HistoryReport | null
  /** Routes that split their traffic between pools, with the weights now and the requests each pool got. */
  splits: SplitStatus[]
  /** With the admin API only: its most recent changes (at most 20), oldest first (docs/admin.md). */
  changes?: AdminChange[]
  /**
   * Cluster mode (docs/cluster.md): the worker that answered and every worker that did, with its requests in flight.
   * Counters and in-flight counts of the pools and targets are then the machine's, summed over these workers.
   */
  cluster?: { worker: number, workers: Array<{ id: number, pid: number, checking: boolean, inFlight: number }> }
}

/** A route's split (docs/traffic.md). */
export interface SplitStatus {
  route: string
  arms: Array<{ pool: string, weight: number }>
  /** Requests each pool got from the split, match rules' pools included. */
  requests: Record<string, number>
}
