import type { LastCheck, Target } from '../pool/target'
import type { HealthWatcher, Monitor, MonitorListener, TransitionEvent } from './monitor'

/** How much a check's state says about a target that is not fully well: unhealthy, else last failed. */
function weight (monitor: Monitor): number {
  return (monitor.healthy ? 0 : 2) + (monitor.lastCheck?.ok === false ? 1 : 0)
}

/**
 * The last result of the check that explains a target's state: the first
 * unhealthy check, else the first whose last result failed, else the check
 * that ended last. Its index is the one in this list, which a monitor shared
 * with another list may not have.
 */
function explaining (monitors: readonly Monitor[]): LastCheck | null {
  let best: LastCheck | null = null
  let bestWeight = -1
  for (let i = 0; i < monitors.length; i++) {
    const last = monitors[i].lastCheck
    if (last === null) continue
    const w = weight(monitors[i])
    if (best === null || w > bestWeight || (w === 0 && bestWeight === 0 && last.at >= best.at)) {
      best = { ...last, check: i }
      bestWeight = w
    }
  }
  return best
}

/**
 * The health of one target URL under one list of checks (a single check is a
 * list of one): healthy while every check's own state machine is, so one
 * failing layer is enough to take the target out. Shared by the pools whose
 * targets have that URL and list; each change of state is reported once, here.
 */
export class CheckList implements MonitorListener {
  readonly id: string
  readonly url: string
  healthy: boolean
  lastCheck: LastCheck | null
  readonly watchers = new Map<Target, HealthWatcher>()

  constructor (target: Target, readonly monitors: readonly Monitor[], private readonly report: (event: TransitionEvent) => void) {
    this.id = target.id
    this.url = target.url
    this.healthy = monitors.every((m) => m.healthy)
    this.lastCheck = explaining(monitors)
  }

  checked (monitor: Monitor, ok: boolean, reason: string): void {
    const from = this.healthy
    const to = this.monitors.every((m) => m.healthy)
    this.healthy = to
    const lastCheck = explaining(this.monitors) as LastCheck
    this.lastCheck = lastCheck
    const passing = ok && this.monitors.every((m) => m.lastCheck?.ok !== false)
    for (const [target, watcher] of this.watchers) watcher.checked(target, passing, to !== from, to, lastCheck)
    if (to !== from) {
      this.report({
        id: this.id,
        url: this.url,
        from: from ? 'healthy' : 'unhealthy',
        to: to ? 'healthy' : 'unhealthy',
        reason,
        check: this.monitors.indexOf(monitor),
        type: monitor.check.type
      })
    }
  }
}
