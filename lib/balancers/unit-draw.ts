import { murmur3 } from './hash/murmur3'

/** Golden-ratio steps spread unkeyed draws over [0, 1) evenly, with no randomness to differ between replicas. */
const SPREAD_STEP = 0.6180339887498949

/**
 * Draws a point of [0, 1) per request to split requests by shares (the tiers
 * of a pool, the arms of a split): a request with a key gets the point its
 * key hashes to, the same on every replica and for as long as the key lasts
 * (nginx's split_clients); one without a key gets the next point of a
 * golden-ratio sequence, which keeps any run of requests within one request of
 * every share.
 */
export class UnitDraw {
  private spread = 0

  /** `seed`: apart from the balancers' own hashes, so a share and a target do not correlate. */
  constructor (private readonly seed: number) {}

  draw (key: string | undefined): number {
    if (key !== undefined) return murmur3(key, this.seed) / 0x100000000
    let u = this.spread + SPREAD_STEP
    if (u >= 1) u -= 1
    this.spread = u
    return u
  }
}
