/** What a request, a handler and the status page may read of a target. */
export interface LbTarget {
  /** Opaque, stable id: configured, or derived from the URL. Safe to show to clients. */
  readonly id: string
  /** The configured URL (origin plus an optional base path). */
  readonly url: string
  /** The configured weight, a positive integer. */
  readonly weight: number
}

/** What the status page and metrics report for a target, most severe first. */
export type TargetState = 'draining' | 'disabled' | 'unhealthy' | 'ejected' | 'slow-start' | 'healthy'

/**
 * The active check that explains a target's state: with several checks, the
 * last failed result of the first check whose last result failed, else the
 * latest result of any.
 */
export interface LastCheck {
  /** When it ended, epoch ms. */
  at: number
  ok: boolean
  /** Why it failed (a short reason such as 'status 503' or 'timeout'), without the address. */
  error?: string
  /** Which check: its index in the pool's `healthCheck` list (0 for a single check). */
  check: number
  type: 'http' | 'tcp'
}

/** EWMA time constant: a sample weighs half after about 7 s, nearly nothing after 30 s. */
const EWMA_TAU_MS = 10_000
/** A target with no sample yet is assumed to answer in this time. */
export const DEFAULT_LATENCY_MS = 100

/**
 * A target of one pool with its live counters. Counters are plain fields so the
 * hot path updates them without calls or allocation.
 */
export class Target implements LbTarget {
  readonly id: string
  readonly url: string
  /** scheme://host:port, the key under which the HTTP client keeps its connections. */
  readonly origin: string
  /** Path prefix of the configured URL without a trailing slash ('' for none). */
  readonly basePath: string
  weight: number
  /**
   * The weight balancers use: the configured weight, scaled down during slow start.
   * May be fractional; never 0 for an eligible target.
   */
  effectiveWeight: number

  inFlight = 0
  requests = 0
  /** Open WebSocket tunnels; each is also one of inFlight until it closes. */
  tunnels = 0
  /** Tries that failed in a way the target answers for: no connection, no answer in time, a broken one, a 5xx. */
  failures = 0
  /** Tries cut because the client left or stopped reading (nginx's 499): not the target's doing. */
  aborted = 0
  /** Latency EWMA in ms, and when it was last updated (performance.now()). */
  ewmaMs = DEFAULT_LATENCY_MS
  ewmaStamp = 0

  /** Maintenance switch (pool.disable / pool.enable): a disabled target stays in the pool and takes no new picks. */
  enabled = true
  /** While disabled: whether clients that affinity pins to it stay with it (else they move). */
  keepSticky = false
  /** Draining: no new picks except sticky clients; leaves the pool when idle. */
  draining = false
  /** Active health checks say it is up (true until a check says otherwise, unless configured). */
  healthy = true
  /** Passive outlier detection: ejected until this time (epoch ms); 0 when not ejected. */
  ejectedUntil = 0
  /** Passive outlier detection: failed tries in a row (a success resets it). */
  consecutiveFailures = 0
  /** Slow start: the ramp of effectiveWeight ends at this time (epoch ms); 0 when not ramping. */
  slowStartUntil = 0
  /** The last active check, or null before the first one. */
  lastCheck: LastCheck | null = null
  /** Requests in flight at most (maxConnections); 0 for no limit. */
  maxConnections = 0
  /** At its limit: takes no new request until one of its own ends. Set by the pool only. */
  full = false
  /** Its tier: 0 serves first; higher ones take requests only while those before them cannot. */
  priority = 0

  /** A slot owned by the pool's balancer (e.g. a heap index); -1 when unused. */
  lbSlot = -1
  /** The index of the pool's tier whose balancers hold it; -1 when none does. */
  lbTier = -1

  constructor (id: string, url: string, origin: string, basePath: string, weight: number, maxConnections = 0, priority = 0) {
    this.id = id
    this.url = url
    this.origin = origin
    this.basePath = basePath
    this.weight = weight
    this.effectiveWeight = weight
    this.maxConnections = maxConnections
    this.priority = priority
  }

  /**
   * Adds a latency sample. Peak-sensitive as in Finagle's PeakEWMA: a sample above
   * the current estimate replaces it at once, so a target that turns slow is
   * avoided quickly, while one that turns fast regains traffic gradually.
   */
  observeLatency (ms: number, now: number): void {
    const current = this.decayedEwma(now)
    if (this.ewmaStamp === 0 || ms > current) {
      this.ewmaMs = ms
    } else {
      const dt = now - this.ewmaStamp
      const w = Math.exp(-dt / EWMA_TAU_MS)
      this.ewmaMs = current * w + ms * (1 - w)
    }
    this.ewmaStamp = now
  }

  /**
   * The EWMA as seen now: it decays while no sample arrives, so a target that
   * was slow is tried again after a while instead of starving.
   */
  decayedEwma (now: number): number {
    const dt = now - this.ewmaStamp
    if (this.ewmaStamp === 0 || dt <= 0) return this.ewmaMs
    return this.ewmaMs * Math.exp(-dt / EWMA_TAU_MS)
  }

  /**
   * P2C score: lower is better. A target never measured wins while it has
   * nothing in flight, so it is measured at once, one request at a time, instead
   * of waiting for a default estimate to decay below its peers'.
   */
  score (now: number): number {
    if (this.ewmaStamp === 0 && this.inFlight === 0) return 0
    return this.decayedEwma(now) * (this.inFlight + 1) / this.effectiveWeight
  }

  get state (): TargetState {
    if (this.draining) return 'draining'
    if (!this.enabled) return 'disabled'
    if (!this.healthy) return 'unhealthy'
    if (this.ejectedUntil !== 0) return 'ejected'
    if (this.slowStartUntil !== 0) return 'slow-start'
    return 'healthy'
  }

  toJSON (): LbTarget {
    return { id: this.id, url: this.url, weight: this.weight }
  }
}
