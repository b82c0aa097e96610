import type { Target } from '../pool/target'

/**
 * Targets ordered by id with a plain code-unit comparison, not localeCompare:
 * hash structures built from this order are the same on every replica,
 * whatever order the targets arrived in and whatever the locale.
 */
export function sortById (targets: readonly Target[]): Target[] {
  return targets.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}

/** A linear scan: ctx.tried holds at most the few attempts of one request. */
export function wasTried (target: Target, tried: readonly Target[]): boolean {
  for (let i = 0; i < tried.length; i++) {
    if (tried[i] === target) return true
  }
  return false
}

/**
 * Where each target sat in the previous set, so update() can carry a balancer's
 * per-target state over to the targets that stay.
 */
export function positions (targets: readonly Target[]): Map<Target, number> {
  const map = new Map<Target, number>()
  for (let i = 0; i < targets.length; i++) map.set(targets[i], i)
  return map
}
