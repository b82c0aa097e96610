import type { Target } from '../../pool/target'
import type { PickContext } from '../balancer'
import { wasTried } from '../common'

/**
 * The positions of a hash structure (ring points, Maglev entries) and the
 * target owning each, with the walk both use when the first owner will not do:
 * it was tried already, or bounded loads find it full.
 */
export class OwnerTable {
  /** Owner index -> target, sorted by id. */
  readonly targets: readonly Target[]
  /** Position -> owner index. */
  readonly owners: Int32Array
  /**
   * Position -> the next position (wrapping) owned by another target, so a walk
   * crosses a target's run of positions in one step.
   */
  private readonly nextOther: Int32Array
  /** Which owners this walk has met: seen[o] === stamp, reset by bumping the stamp. */
  private readonly seen: Uint32Array
  private stamp = 0
  private readonly balanceFactor: number

  constructor (targets: readonly Target[], owners: Int32Array, balanceFactor: number) {
    this.targets = targets
    this.owners = owners
    this.balanceFactor = balanceFactor > 0 ? balanceFactor : 0
    this.seen = new Uint32Array(targets.length)
    this.nextOther = nextOtherOwner(owners)
  }

  /**
   * The target for a key that lands on `position`: its owner, or else the next
   * owner clockwise that was not tried, is below its connection limit and, with
   * bounded loads, has room for one more request. When bounded loads find every
   * such target loaded, the first of them; when none is left, undefined.
   */
  choose (position: number, ctx: PickContext): Target | undefined {
    const first = this.targets[this.owners[position]]
    const capacity = this.capacity(ctx)
    if (ctx.tried.length === 0 && first.inFlight + 1 <= capacity && !first.full) return first
    return this.walk(position, ctx, capacity)
  }

  /** Bounded loads (Mirrokni et al.): ceil(c x average load, counting this request). */
  private capacity (ctx: PickContext): number {
    if (this.balanceFactor === 0) return Infinity
    return Math.ceil(this.balanceFactor * (ctx.poolInFlight + 1) / this.targets.length)
  }

  private walk (position: number, ctx: PickContext, capacity: number): Target | undefined {
    const owners = this.owners
    const seen = this.seen
    if (++this.stamp === 0xffffffff) {
      seen.fill(0)
      this.stamp = 1
    }
    const stamp = this.stamp
    let fallback: Target | undefined
    let met = 0
    for (let steps = 0; steps < owners.length && met < seen.length; steps++) {
      const o = owners[position]
      if (seen[o] !== stamp) {
        seen[o] = stamp
        met++
        const target = this.targets[o]
        // A target at its connection limit takes nothing, even as the fallback of bounded loads.
        if (!wasTried(target, ctx.tried) && !target.full) {
          if (target.inFlight + 1 <= capacity) return target
          fallback ??= target
        }
      }
      position = this.nextOther[position]
    }
    return fallback
  }
}

function nextOtherOwner (owners: Int32Array): Int32Array {
  const m = owners.length
  const next = new Int32Array(m)
  // Start from a position whose successor has another owner; with a single
  // owner everywhere, plain succession keeps the walk bounded all the same.
  let end = -1
  for (let k = 0; k < m; k++) {
    if (owners[k] !== owners[(k + 1) % m]) end = k
  }
  if (end < 0) {
    for (let k = 0; k < m; k++) next[k] = (k + 1) % m
    return next
  }
  for (let c = 0; c < m; c++) {
    const k = (end - c + m) % m
    const after = (k + 1) % m
    next[k] = owners[after] !== owners[k] ? after : next[after]
  }
  return next
}
