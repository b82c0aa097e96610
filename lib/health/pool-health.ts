import type { Logger } from '../types'
import type { MembershipChange, Pool } from '../pool/pool'
import type { PolicyChange } from '../pool/policy'
import { isServing } from '../pool/serving'
import type { LastCheck, Target } from '../pool/target'
import type { HealthWatcher } from './monitor'
import type { ResolvedHealthCheck } from './options'
import type { HealthSeed } from './monitor'
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
  watch: (target: Target, checks: readonly ResolvedHealthCheck[], watcher: HealthWatcher, seed?: HealthSeed) => { readonly healthy: boolean, readonly lastCheck: LastCheck | null }
  unwatch: (target: Target, checks: readonly ResolvedHealthCheck[]) => void
}

/**
 * One pool's health wiring: its targets follow the registry's shared state,
 * its tries feed outlier detection, and targets that join or recover ramp up
 * through slow start. Every change ends in one rebuild of the pool's eligible set.
 */
export class PoolHealth implements HealthWatcher {
  outlier: OutlierDetector | null
  slowStart: SlowStart | null
  /** The checks the pool's targets follow now: configure() may change them. */
  private checks: readonly ResolvedHealthCheck[] | null

  constructor (readonly pool: Pool, private readonly registry: CheckRunner) {
    const options = pool.options
    this.outlier = options.outlierDetection === null ? null : new OutlierDetector(pool, options.outlierDetection, this.log)
    this.slowStart = options.slowStart === null ? null : new SlowStart(pool, options.slowStart)
    const check = options.healthCheck
    this.checks = check
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
    pool.on('configure', this.onConfigure)
  }

  private readonly log = (): CheckRunner['log'] => this.registry.log

  /** `seed`: the state a check new to the target starts from (configure() changed the checks), rather than its initial state. */
  private follow (target: Target, checks: readonly ResolvedHealthCheck[], seed?: HealthSeed): void {
    const state = this.registry.watch(target, checks, this, seed)
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
    this.pool.off('configure', this.onConfigure)
    this.outlier?.close()
    this.slowStart?.close()
  }

  private readonly onChange = (change: MembershipChange): void => {
    if (change.added.length === 0 && change.removed.length === 0) return
    const check = this.checks
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

  /**
   * configure() changed the pool's options: targets move to the new checks,
   * each starting from the state it is in (a check that did not change keeps
   * its state machine and history, as it is shared by URL and configuration);
   * outlier detection keeps its ejections under new thresholds, or ends them
   * when it is switched off; ramps of slow start end at full weight when it changes.
   */
  private readonly onConfigure = (change: PolicyChange): void => {
    const options = this.pool.options
    this.pool.batch(() => {
      if (change.changed.includes('healthCheck')) this.moveChecks(this.checks, options.healthCheck)
      if (change.changed.includes('outlierDetection')) {
        const outlier = options.outlierDetection
        if (outlier === null) {
          this.outlier?.stop()
          this.outlier = null
        } else if (this.outlier === null) {
          this.outlier = new OutlierDetector(this.pool, outlier, this.log)
        } else {
          this.outlier.retune(outlier)
        }
      }
      if (change.changed.includes('slowStart')) {
        this.slowStart?.finish()
        this.slowStart = options.slowStart === null ? null : new SlowStart(this.pool, options.slowStart)
      }
    })
  }

  private moveChecks (from: readonly ResolvedHealthCheck[] | null, to: readonly ResolvedHealthCheck[] | null): void {
    if (sameChecks(from, to)) return
    this.checks = to
    for (const target of this.pool.targets) {
      // Watched under the new list first, so checks both lists share keep running.
      if (to !== null) this.follow(target, to, { healthy: target.healthy, lastCheck: target.lastCheck })
      if (from !== null) this.registry.unwatch(target, from)
      // Without active checks, nothing says a target is down.
      if (to === null) this.pool.setHealth(target, true, null)
    }
  }

  private readonly onPanic = (panic: boolean): void => {
    const line = { pool: this.pool.name, healthy: this.pool.targets.filter(isServing).length, targets: this.pool.targets.length }
    if (panic) this.registry.log?.warn(line, 'fastify-lb: too few healthy targets, routing over all of them (panic)')
    else this.registry.log?.info(line, 'fastify-lb: enough healthy targets again, panic ends')
  }
}

function sameChecks (a: readonly ResolvedHealthCheck[] | null, b: readonly ResolvedHealthCheck[] | null): boolean {
  if (a === null || b === null) return a === b
  return a.length === b.length && a.every((check, i) => check.key === b[i].key)
}
