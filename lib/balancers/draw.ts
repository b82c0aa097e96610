/**
 * Uniform random integers for the drawing algorithms (random, p2c-ewma).
 *
 * V8 returns every Math.random() result in a freshly allocated heap number,
 * so by default draws come from mulberry32 on an int32 state seeded once from
 * Math.random, and a pick allocates nothing. A random function given in the
 * options (tests, simulations) is used as is.
 */
export class Draw {
  private readonly state = new Int32Array(1)
  private readonly random: (() => number) | undefined

  constructor (random?: () => number) {
    this.random = random
    this.state[0] = Math.floor(Math.random() * 0x100000000)
  }

  /** An integer in [0, n); n at most 2^30, so the result is a small integer. */
  below (n: number): number {
    if (this.random !== undefined) return Math.min(Math.floor(this.random() * n), n - 1)
    const s = (this.state[0] + 0x6d2b79f5) | 0
    this.state[0] = s
    let t = Math.imul(s ^ (s >>> 15), s | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor(((t ^ (t >>> 14)) >>> 0) / 0x100000000 * n)
  }
}
