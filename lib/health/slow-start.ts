import type { Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import type { ResolvedSlowStart } from './options'

/** Weight updates per window: fine enough to look linear, rare enough that rebuilding the balancer costs nothing. */
const STEPS = 20
/** Never update more often than this, whatever the window. */
const MIN_STEP_MS = 10

/** The weight of a target `elapsed` ms into a ramp of `window` ms, from minWeight x weight to weight. */
export function rampWeight (weight: number, minWeight: number, elapsed: number, window: number): number {
  const progress = Math.min(1, Math.max(0, elapsed / window))
  return weight * (minWeight + (1 - minWeight) * progress)
}

/**
 * Ramps the effective weight of targets that were added or became healthy, so
 * a cold upstream is not handed its full share at once. The ramp advances in
 * steps; each step rebuilds the balancer once for every ramping target.
 */
export class SlowStart {
  private readonly ramping = new Set<Target>()
  private timer: NodeJS.Timeout | null = null
  private readonly step: number
  private closed = false

  constructor (private readonly pool: Pool, private readonly options: ResolvedSlowStart) {
    this.step = Math.max(MIN_STEP_MS, options.window / STEPS)
  }

  begin (target: Target): void {
    if (this.closed) return
    this.ramping.add(target)
    if (this.timer === null) {
      this.timer = setInterval(this.advance, this.step)
      this.timer.unref()
    }
    this.pool.setEffectiveWeight(target, target.weight * this.options.minWeight, Date.now() + this.options.window)
  }

  /** Stops ramping a target that left the pool. */
  forget (target: Target): void {
    this.ramping.delete(target)
    if (this.ramping.size === 0) this.stopTimer()
  }

  /** Slow start changes or is switched off (pool.configure): ramps under way end at full weight. */
  finish (): void {
    this.pool.batch(() => {
      for (const target of this.ramping) this.pool.setEffectiveWeight(target, target.weight, 0)
    })
    this.close()
  }

  close (): void {
    this.closed = true
    this.ramping.clear()
    this.stopTimer()
  }

  private stopTimer (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  private readonly advance = (): void => {
    const now = Date.now()
    const { window, minWeight } = this.options
    this.pool.batch(() => {
      for (const target of this.ramping) {
        if (now >= target.slowStartUntil) {
          this.ramping.delete(target)
          this.pool.setEffectiveWeight(target, target.weight, 0)
        } else {
          this.pool.setEffectiveWeight(target, rampWeight(target.weight, minWeight, now - (target.slowStartUntil - window), window), target.slowStartUntil)
        }
      }
    })
    if (this.ramping.size === 0) this.stopTimer()
  }
}
