import type { Logger } from '../types'
import type { MembershipChange, Pool } from '../pool/pool'
import { isServing } from '../pool/serving'
import type { LastCheck, Target } from '../pool/target'
import type { HealthWatcher } from './monitor'
import type { ResolvedHealthCheck } from './options'
import { ejectionLimit, OutlierDetector } from './outlier'
import { SlowStart } from './slow-start'

/**
 * What a pool's health needs of the registry that runs the checks (the
 * HealthRegistry): declared here, so that the registry, which creates each
 * pool's PoolHealth, and PoolHealth do not import each other.
 */
export interface CheckRunner {
  readonly log: Logger | null
  /** Follows the shared checks of the target's URL; returns their state now, which the target takes. */
  watch: (target: Target, checks: readonly ResolvedHealthCheck[], watcher: HealthWatcher) => { readonly healthy: boolean, readonly lastCheck: LastCheck | null }
  unwatch: (target: Target, checks: readonly ResolvedHealthCheck[]) => void
}

/**
 * One pool's health wiring: its targets follow the registry's shared state,
 * its tries feed outlier detection, and targets that join or recover ramp up
 * through slow start. Every change ends in one rebuild of the pool's eligible set.
 */
export class PoolHealth implements HealthWatcher {
  readonly outlier: OutlierDetector | null
  readonly slowStart: SlowStart | null

  constructor (readonly pool: Pool, private readonly registry: CheckRunner) {
    const options = pool.options
    const log = (): CheckRunner['log'] => registry.log
    this.outlier = options.outlierDetection === null ? null : new OutlierDetector(pool, options.outlierDetection, log)
    this.slowStart = options.slowStart === null ? null : new SlowStart(pool, options.slowStart)
    const check = options.healthCheck
    if (check !== null) {
      pool.batch(() => {
        for (const target of pool.targets) this.follow(target, check)
      })
    }
    const outlier = options.outlierDetection
    if (outlier !== null && pool.targets.length > 0 && ejectionLimit(pool.targets.length, outlier.maxEjectionPercent) === 0) {
      registry.log?.warn({ pool: pool.name, targets: pool.targets.length, maxEjectionPercent: outlier.maxEjectionPercent },
        'fastify-lb: outlier detection can eject no target of this pool (maxEjectionPercent x targets rounds down to 0)')
    }
    pool.on('change', this.onChange)
    pool.on('panic', this.onPanic)
  }

  private follow (target: Target, checks: readonly ResolvedHealthCheck[]): void {
    const state = this.registry.watch(target, checks, this)
    this.pool.setHealth(target, state.healthy, state.lastCheck)
  }

  checked (target: Target, ok: boolean, changed: boolean, healthy: boolean, lastCheck: LastCheck): void {
    this.pool.batch(() => {
      this.pool.setHealth(target, healthy, lastCheck)
      if (ok && target.ejectedUntil !== 0 && this.pool.options.outlierDetection?.unejectOnActiveCheck === true) {
        this.outlier?.uneject(target, 'active check passed')
      }
      // A target that recovers ramps up again.
      if (changed && healthy) this.slowStart?.begin(target)
    })
  }

  close (): void {
    this.pool.off('change', this.onChange)
    this.pool.off('panic', this.onPanic)
    this.outlier?.close()
    this.slowStart?.close()
  }

  private readonly onChange = (change: MembershipChange): void => {
    if (change.added.length === 0 && change.removed.length === 0) return
    const check = this.pool.options.healthCheck
    // A pool's first targets (a discovery source's first list) have no peers to be protected from.
    const firstTargets = change.added.length === this.pool.targets.length
    this.pool.batch(() => {
      for (const target of change.added) {
        if (check !== null) {
          this.follow(target, check)
        }
        if (!firstTargets) this.slowStart?.begin(target)
      }
      for (const target of change.removed) {
        if (check !== null) this.registry.unwatch(target, check)
        this.outlier?.forget(target)
        this.slowStart?.forget(target)
      }
    })
  }

  private readonly onPanic = (panic: boolean): void => {
    const line = { pool: this.pool.name, healthy: this.pool.targets.filter(isServing).length, targets: this.pool.targets.length }
    if (panic) this.registry.log?.warn(line, 'fastify-lb: too few healthy targets, routing over all of them (panic)')
    else this.registry.log?.info(line, 'fastify-lb: enough healthy targets again, panic ends')
  }
}
