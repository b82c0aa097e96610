import type { Balancer, PickContext, PickInput } from '../balancers/balancer'
import { UnitDraw } from '../balancers/unit-draw'
import type { Target } from './target'
import { isLive, isServing, mayBePicked, mayBePickedInPanic } from './serving'

/** The balancers of one tier: its algorithm, and for hashing ones the algorithm of requests without a key. */
export interface TierBalancers {
  balancer: Balancer
  fallback: Balancer | null
}

/** Seed of the hash that draws a keyed request's tier: apart from the algorithms' own, so the two do not correlate. */
const TIER_SEED = 0x7431e2

const NO_TARGETS: readonly Target[] = []

/** One priority's targets that may be picked now, and its share of requests. */
class Tier {
  targets: readonly Target[] = NO_TARGETS
  /** The upper end of this tier's share of requests in [0, 1], counted over the tiers before it too. */
  upTo = 0
  /** Picks see its targets in id order, like a pool without tiers. */
  constructor (readonly priority: number, public balancers: TierBalancers) {}

  pick (ctx: PickContext): Target | undefined {
    const n = this.targets.length
    if (n === 0) return undefined
    const { balancer, fallback } = this.balancers
    if (fallback === null) return balancer.pick(ctx)
    const t = ctx.key === undefined ? undefined : balancer.pick(ctx)
    if (t !== undefined) return t
    // A hashing tier keeps its full targets (see Tiers), and the algorithm of keyless requests knows nothing of
    // limits: it rotates on until it meets one with room, n picks at most, only while targets are full.
    for (let i = 0; i < n; i++) {
      const other = fallback.pick(ctx)
      if (other === undefined || !other.full) return other
    }
    return undefined
  }

  update (targets: readonly Target[]): void {
    this.targets = targets
    this.balancers.balancer.update(targets)
    this.balancers.fallback?.update(targets)
  }

  loadChanged (target: Target): void {
    this.balancers.balancer.loadChanged?.(target)
    this.balancers.fallback?.loadChanged?.(target)
  }
}

/**
 * The pool's targets by priority (nginx `backup`, Envoy priorities), each tier
 * with balancers of its own. The rule, computed at every rebuild:
 *
 * - a tier's health h is its live targets that pass their health checks over
 *   its live targets (load aside: a full target is healthy);
 * - tier 0 takes min(1, h x factor) of the requests, the next tier
 *   min(what is left, h x factor), and so on; when the tiers together fall
 *   short of 1, their shares are scaled up to 1 (Envoy's normalisation). With
 *   no factor (the default) a tier takes everything while any of its targets
 *   serves: nginx's backup;
 * - a request whose tier has no target with room goes to the next tier that
 *   has one, then to those before it: a full tier spills over as it fills;
 * - panic (panicThreshold): when the tiers' healths summed (at most 1) fall
 *   below the threshold, every live target with room is picked, health aside,
 *   and the first tier with one takes the requests.
 *
 * Which tier a request goes to is drawn from its hash key, so a key stays with
 * its tier while the shares stand, or from a deterministic sequence.
 */
export class Tiers {
  /** The targets of the tiers that have a share, in tier order: the pool's `eligible`. */
  eligible: readonly Target[] = NO_TARGETS
  panic = false
  /** Tiers by priority, for the priorities the members have. */
  private list: Tier[] = []
  /** The only tier with a share; -1 when the shares are split and each request draws. */
  private only = 0
  private readonly unit = new UnitDraw(TIER_SEED)

  /**
   * `keepsFull`: the algorithm keeps full targets in its table and passes over
   * them per pick (rebuilding a ring or a Maglev table whenever a target fills
   * up would cost more than the requests); the others drop them at the rebuild
   * that a full or freed target pushes.
   */
  constructor (
    private readonly make: () => TierBalancers,
    private readonly factor: number,
    private readonly panicThreshold: number,
    private readonly keepsFull: boolean,
    initial: TierBalancers
  ) {
    this.list = [new Tier(0, initial)]
  }

  /** How many tiers the members span. */
  get count (): number {
    return this.list.length
  }

  /** The tier taking the requests now (the first with a share), or -1 without any. */
  get serving (): number {
    for (const tier of this.list) if (tier.upTo > 0) return tier.priority
    return -1
  }

  /** Rebuilds every tier from the members, sorted by id. */
  update (members: readonly Target[]): void {
    const byPriority = new Map<number, Target[]>()
    for (const t of members) {
      let list = byPriority.get(t.priority)
      if (list === undefined) byPriority.set(t.priority, list = [])
      list.push(t)
    }
    this.ensureTiers([...byPriority.keys()].sort((a, b) => a - b))
    const healths = this.list.map((tier) => health(byPriority.get(tier.priority) ?? NO_TARGETS))
    this.panic = this.inPanic(healths, members)
    const panic = this.panic
    const keep = panic ? (this.keepsFull ? isLive : mayBePickedInPanic) : (this.keepsFull ? isServing : mayBePicked)
    const sets = this.list.map((tier) => (byPriority.get(tier.priority) ?? NO_TARGETS).filter(keep))
    this.shareOut(panic ? healths.map((h, i) => sets[i].length > 0 || h.live > 0 ? 1 : 0) : healths.map((h) => h.share))
    if (this.moved(sets)) {
      // A target changing tier would leave a balancer's slot behind in the tier it left: fresh balancers own nothing.
      for (const tier of this.list) tier.balancers = this.make()
    }
    const eligible: Target[] = []
    for (let i = 0; i < this.list.length; i++) {
      const tier = this.list[i]
      tier.update(sets[i])
      for (const t of sets[i]) t.lbTier = i
      if (tier.upTo > (i === 0 ? 0 : this.list[i - 1].upTo)) eligible.push(...sets[i])
    }
    for (const t of members) if (!keep(t)) t.lbTier = -1
    this.eligible = this.list.length === 1 ? sets[0] : eligible
  }

  /** The target of a request: from the tier it draws, or the next one with room. */
  pick (ctx: PickContext, input: PickInput): Target | undefined {
    const list = this.list
    if (list.length === 1) return list[0].pick(ctx)
    const start = this.only >= 0 ? this.only : this.draw(input)
    for (let i = start; i < list.length; i++) {
      const t = list[i].pick(ctx)
      if (t !== undefined) return t
    }
    for (let i = 0; i < start; i++) {
      const t = list[i].pick(ctx)
      if (t !== undefined) return t
    }
    return undefined
  }

  /** Every target a pick could find, tier by tier: for the last resort of a retry. */
  * pickable (): Generator<Target> {
    for (const tier of this.list) yield * tier.targets
  }

  loadChanged (target: Target): void {
    const i = target.lbTier
    if (i >= 0 && i < this.list.length) this.list[i].loadChanged(target)
  }

  private ensureTiers (priorities: number[]): void {
    const list = this.list
    if (list.length === priorities.length && list.every((tier, i) => tier.priority === priorities[i])) return
    // A pool without members keeps one empty tier, so picking never meets an empty list.
    if (priorities.length === 0) priorities = [list[0].priority]
    const kept = new Map(list.map((tier) => [tier.priority, tier]))
    this.list = priorities.map((p) => kept.get(p) ?? new Tier(p, this.make()))
  }

  private inPanic (healths: readonly Health[], members: readonly Target[]): boolean {
    if (this.panicThreshold === 0 || members.length === 0) return false
    let live = 0
    let total = 0
    for (const h of healths) {
      live += h.live
      total += h.share
    }
    return live > 0 && Math.min(1, total) < this.panicThreshold
  }

  /** Gives each tier its share from its health, in order; scales them up when they fall short together. */
  private shareOut (healths: readonly number[]): void {
    const shares = healths.map(() => 0)
    let left = 1
    for (let i = 0; i < healths.length && left > 0; i++) {
      const h = healths[i]
      if (h === 0) continue
      shares[i] = Math.min(left, this.factor === Infinity ? 1 : h * this.factor)
      left -= shares[i]
    }
    const total = 1 - left
    let upTo = 0
    let with_ = 0
    this.only = 0
    for (let i = 0; i < this.list.length; i++) {
      const share = total > 0 ? shares[i] / total : 0
      if (share > 0) {
        with_++
        this.only = i
      }
      upTo = share > 0 ? Math.min(1, upTo + share) : upTo
      this.list[i].upTo = upTo
    }
    if (with_ > 1) this.only = -1
    else if (with_ === 1) this.list[this.only].upTo = 1
  }

  private draw (input: PickInput): number {
    const u = this.unit.draw(input.key)
    const list = this.list
    for (let i = 0; i < list.length; i++) if (u < list[i].upTo) return i
    return list.length - 1
  }

  private moved (sets: ReadonlyArray<readonly Target[]>): boolean {
    for (let i = 0; i < sets.length; i++) {
      for (const t of sets[i]) if (t.lbTier >= 0 && t.lbTier !== i) return true
    }
    return false
  }
}

interface Health {
  live: number
  /** Healthy over live; 0 without live targets. */
  share: number
}

function health (targets: readonly Target[]): Health {
  let live = 0
  let serving = 0
  for (const t of targets) {
    if (!isLive(t)) continue
    live++
    if (isServing(t)) serving++
  }
  return { live, share: live === 0 ? 0 : serving / live }
}
