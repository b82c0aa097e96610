/**
 * The outcomes of the last `seconds` seconds, the current one included, as
 * resilience4j's time-based window keeps them: a ring of per-second buckets
 * and running totals, so adding an outcome and reading a ratio are O(1) and
 * allocate nothing. Seconds without traffic are cleared as time moves on, at
 * most once per bucket.
 */
export class SlidingWindow {
  /** Counted calls, failed ones and slow ones over the window. */
  calls = 0
  failures = 0
  slow = 0
  private readonly bucketCalls: Uint32Array
  private readonly bucketFailures: Uint32Array
  private readonly bucketSlow: Uint32Array
  /** The second (clock ms / 1000, rounded down) of the newest bucket; -1 before the first outcome. */
  private head = -1

  constructor (readonly seconds: number) {
    this.bucketCalls = new Uint32Array(seconds)
    this.bucketFailures = new Uint32Array(seconds)
    this.bucketSlow = new Uint32Array(seconds)
  }

  add (now: number, failed: boolean, slow: boolean): void {
    this.advance(now)
    const i = this.head % this.seconds
    this.bucketCalls[i]++
    this.calls++
    if (failed) {
      this.bucketFailures[i]++
      this.failures++
    }
    if (slow) {
      this.bucketSlow[i]++
      this.slow++
    }
  }

  /** Drops the seconds that have left the window by `now`. */
  advance (now: number): void {
    const second = Math.floor(now / 1000)
    // A clock that stands still, or steps back, leaves the outcome in the newest bucket.
    if (second <= this.head) return
    const steps = Math.min(second - this.head, this.seconds)
    for (let k = 1; k <= steps; k++) this.clear((this.head + k) % this.seconds)
    this.head = second
  }

  /** Forgets every outcome: a breaker that changes state judges afresh. */
  reset (): void {
    this.bucketCalls.fill(0)
    this.bucketFailures.fill(0)
    this.bucketSlow.fill(0)
    this.calls = 0
    this.failures = 0
    this.slow = 0
  }

  private clear (i: number): void {
    this.calls -= this.bucketCalls[i]
    this.failures -= this.bucketFailures[i]
    this.slow -= this.bucketSlow[i]
    this.bucketCalls[i] = 0
    this.bucketFailures[i] = 0
    this.bucketSlow[i] = 0
  }
}
