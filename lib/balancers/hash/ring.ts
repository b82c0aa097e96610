import type { Target } from '../../pool/target'
import { HASH_SLOT, murmur3, murmur3ToSlot } from './murmur3'
import type { Balancer, BalancerOptions, PickContext } from '../balancer'
import { sortById } from '../common'
import { OwnerTable } from './owner-table'

export const DEFAULT_POINTS_PER_WEIGHT = 160
/**
 * About the most points a ring holds (8 MB of them): 10,000 targets of weight 1
 * at the default 160 points fit whole. Weights up to 1,000,000 are valid, and a
 * ring holding pointsPerWeight points for each unit of them would fill gigabytes
 * and take seconds to build; above this, every target's count is scaled down alike.
 */
export const MAX_RING_POINTS = 2 ** 21

/** Where a request's hash key comes from. */
export type KeyOf = (ctx: PickContext) => string | undefined

const DIGIT_BITS = 11
const DIGITS = 1 << DIGIT_BITS

/**
 * Sorts points by hash, carrying their owners, with an LSD radix sort in three
 * passes of 11 bits (2,048 buckets fit in cache, where 65,536 would thrash
 * it): several times faster than sorting a million typed-array numbers, and
 * stable, so colliding points stay in owner (id) order.
 */
function sortPoints (points: Uint32Array, owners: Int32Array): void {
  let fromPoints: Uint32Array = points
  let fromOwners: Int32Array = owners
  let toPoints: Uint32Array = new Uint32Array(points.length)
  let toOwners: Int32Array = new Int32Array(points.length)
  const start = new Uint32Array(DIGITS + 1)
  for (let shift = 0; shift < 32; shift += DIGIT_BITS) {
    start.fill(0)
    for (let p = 0; p < fromPoints.length; p++) start[((fromPoints[p] >>> shift) & (DIGITS - 1)) + 1]++
    for (let d = 0; d < DIGITS; d++) start[d + 1] += start[d]
    for (let p = 0; p < fromPoints.length; p++) {
      const at = start[(fromPoints[p] >>> shift) & (DIGITS - 1)]++
      toPoints[at] = fromPoints[p]
      toOwners[at] = fromOwners[p]
    }
    ;[fromPoints, toPoints] = [toPoints, fromPoints]
    ;[fromOwners, toOwners] = [toOwners, fromOwners]
  }
  // Three passes leave the result in the spare arrays.
  points.set(fromPoints)
  owners.set(fromOwners)
}

/**
 * A ketama-style ring: pointsPerWeight points per unit of effectiveWeight,
 * point i of a target at murmur3(id, seed i), which needs no string per point.
 * Points are numbered per target, so a weight change adds or removes a
 * target's last points and leaves every other key where it was. Built from
 * targets sorted by id, colliding points ordered by owner id: every replica
 * with the same targets maps every key alike.
 */
class HashRing implements Balancer {
  readonly skipsTried = true
  private readonly keyOf: KeyOf
  private readonly pointsPerWeight: number
  private readonly balanceFactor: number
  private points = new Uint32Array(0)
  /**
   * bucket[b]: the first point whose top bits are >= b. At 10,000 targets the
   * points fill 6 MB: a plain binary search over them misses the cache at most
   * of its 21 steps, while the bucket narrows it to a handful of neighbours.
   */
  private bucket = new Uint32Array(1)
  private shift = 31
  private table = new OwnerTable([], new Int32Array(0), 0)

  constructor (options: BalancerOptions, keyOf: KeyOf) {
    this.keyOf = keyOf
    this.pointsPerWeight = options.pointsPerWeight ?? DEFAULT_POINTS_PER_WEIGHT
    this.balanceFactor = options.balanceFactor ?? 0
    if (!(this.pointsPerWeight > 0)) throw new RangeError(`pointsPerWeight must be positive, got ${this.pointsPerWeight}`)
  }

  update (targets: readonly Target[]): void {
    const sorted = sortById(targets)
    let wanted = 0
    for (const t of sorted) wanted += this.pointsPerWeight * t.effectiveWeight
    // Beyond the cap a weight change moves keys of every target, not only of the one that changed.
    const scale = wanted > MAX_RING_POINTS ? MAX_RING_POINTS / wanted : 1
    let total = 0
    const counts = sorted.map((t) => {
      const count = Math.max(1, Math.round(this.pointsPerWeight * t.effectiveWeight * scale))
      total += count
      return count
    })
    const points = new Uint32Array(total)
    const owners = new Int32Array(total)
    let k = 0
    for (let o = 0; o < sorted.length; o++) {
      for (let i = 0; i < counts[o]; i++) {
        points[k] = murmur3(sorted[o].id, i)
        owners[k++] = o
      }
    }
    sortPoints(points, owners)
    // About eight points a bucket, and never more than 2^16 buckets (256 KB).
    const bits = Math.min(16, Math.max(1, Math.ceil(Math.log2(total + 1)) - 3))
    const buckets = 2 ** bits
    const width = 2 ** (32 - bits)
    const bucket = new Uint32Array(buckets + 1)
    for (let b = 0, p = 0; b <= buckets; b++) {
      while (p < total && points[p] < b * width) p++
      bucket[b] = p
    }
    this.points = points
    this.bucket = bucket
    this.shift = 32 - bits
    this.table = new OwnerTable(sorted, owners, this.balanceFactor)
  }

  /** Undefined for a request without a key: the pool then uses its fallback algorithm. */
  pick (ctx: PickContext): Target | undefined {
    const key = this.keyOf(ctx)
    const points = this.points
    if (key === undefined || points.length === 0) return undefined
    murmur3ToSlot(key, 0)
    const h = HASH_SLOT[0]
    // The first point at or after h, wrapping past the last.
    const b = h >>> this.shift
    let lo = this.bucket[b]
    let hi = this.bucket[b + 1]
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid] < h) lo = mid + 1
      else hi = mid
    }
    return this.table.choose(lo === points.length ? 0 : lo, ctx)
  }
}

/** A ring over any key: ip-hash builds on this one with the client address. */
export function hashRing (options: BalancerOptions, keyOf: KeyOf): Balancer {
  return new HashRing(options, keyOf)
}

function requestKey (ctx: PickContext): string | undefined {
  return ctx.key
}

/** Consistent hashing on ctx.key, with bounded loads when balanceFactor > 0. */
export function consistentHash (options: BalancerOptions = {}): Balancer {
  return new HashRing(options, requestKey)
}
