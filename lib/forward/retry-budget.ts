/** Seconds of history the budget looks at: Finagle's default time-to-live for deposits. */
export const BUDGET_WINDOW_SECONDS = 10

/**
 * A retry budget in the manner of Finagle's: retries over the last ten seconds
 * may not exceed `percent` of the requests over the same ten seconds, plus a
 * reserve of `minPerSecond` per second so a quiet pool can still retry. Unlike a
 * cap on retries in flight, it lets a burst of resets (a crashed upstream cuts
 * all its requests at once) be retried while the pool has been healthy, and
 * still stops a storm when everything fails: then every request adds `percent`
 * of a retry and no more.
 *
 * Counts live in one slot per second; a request costs a clock read and an
 * increment, and a retry decision sums ten slots.
 */
export class RetryBudget {
  private readonly requests = new Uint32Array(BUDGET_WINDOW_SECONDS)
  private readonly retries = new Uint32Array(BUDGET_WINDOW_SECONDS)
  private second = 0
  private slot = 0
  private reserve: number

  constructor (private percent: number, minPerSecond: number, private readonly clock: () => number = Date.now) {
    this.reserve = minPerSecond * BUDGET_WINDOW_SECONDS
  }

  /** New terms (pool.configure): the requests and retries of the window count on under them. */
  retune (percent: number, minPerSecond: number): void {
    this.percent = percent
    this.reserve = minPerSecond * BUDGET_WINDOW_SECONDS
  }

  /** Counts a request's first try. */
  deposit (): void {
    this.advance()
    this.requests[this.slot]++
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  withdraw (): boolean {
    this.advance()
    let requests = 0
    let retries = 0
    for (let i = 0; i < BUDGET_WINDOW_SECONDS; i++) {
      requests += this.requests[i]
      retries += this.retries[i]
    }
    if (retries + 1 > this.percent * requests + this.reserve) return false
    this.retries[this.slot]++
    return true
  }

  private advance (): void {
    const second = Math.floor(this.clock() / 1000)
    if (second === this.second) return
    // Seconds that passed without traffic leave empty slots behind.
    const steps = Math.min(second - this.second, BUDGET_WINDOW_SECONDS)
    for (let i = 0; i < steps; i++) {
      this.slot = (this.slot + 1) % BUDGET_WINDOW_SECONDS
      this.requests[this.slot] = 0
      this.retries[this.slot] = 0
    }
    this.second = second
  }
}
