import { isDeepStrictEqual } from 'node:util'
import { invalidOption } from '../errors'
import { checkWeight } from '../options/validate'
import type { Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import type { PoolPolicy } from '../pool/policy'
import type { Split } from '../route/split'
import type { AdminChange, AdminTargetState, ConfigureChange, SplitChange } from './changes'

/** What a call may change of one target. */
export interface TargetEdit {
  weight?: number
  state?: AdminTargetState
  /** With state 'disabled': clients that affinity pins to the target stay with it (pool.disable's option). */
  keepSticky?: boolean
}

export function adminState (target: Target): AdminTargetState {
  return target.draining ? 'draining' : target.enabled ? 'enabled' : 'disabled'
}

/**
 * Applies an edit to a target that is not draining, through the pool's runtime API: checked whole first
 * (FST_LB_INVALID_OPTION, nothing changed), then the weight, then the state. A drain is started, not awaited:
 * the target leaves once its requests end. Returns the changes made; none when it had those values already.
 */
export function editTarget (pool: Pool, target: Target, edit: TargetEdit, at: number): AdminChange[] {
  const id = target.id
  if (edit.weight !== undefined) checkWeight(pool.name, `targets.${id}.weight`, edit.weight)
  if (edit.keepSticky !== undefined && edit.state !== 'disabled') {
    throw invalidOption(pool.name, `targets.${id}.keepSticky`, edit.keepSticky, 'applies only with state "disabled"')
  }
  const changes: AdminChange[] = []
  if (edit.weight !== undefined && edit.weight !== target.weight) {
    changes.push({ kind: 'weight', at, pool: pool.name, target: id, from: target.weight, to: edit.weight })
    pool.setWeight(id, edit.weight)
  }
  const from = adminState(target)
  const to = edit.state
  if (to !== undefined && to !== from) {
    changes.push({ kind: 'state', at, pool: pool.name, target: id, from, to })
    if (to === 'enabled') pool.enable(id)
    else if (to === 'disabled') pool.disable(id, { keepSticky: edit.keepSticky ?? false })
    // Not awaited: the answer says it is draining; it never rejects.
    else pool.drain(id).catch(() => {})
  }
  return changes
}

/** New weights for a split's arms (split.setWeights: every arm named, or nothing changes); null when they are those it had. */
export function editSplit (split: Split, weights: Record<string, number>, at: number): SplitChange | null {
  const from = split.weights
  split.setWeights(weights)
  const to = split.weights
  return isDeepStrictEqual(from, to) ? null : { kind: 'split', at, route: split.route, from, to }
}

/**
 * An option's value as a change shows it, in logs and on the status page: JSON, with any `secret` (affinity's keys)
 * as '[redacted]', functions as '[function]', and an option back to its default as null.
 */
function shown (value: unknown): unknown {
  if (value === undefined) return null
  const text = JSON.stringify(value, (key, v: unknown) => key === 'secret' ? '[redacted]' : typeof v === 'function' ? '[function]' : v)
  return text === undefined ? null : JSON.parse(text)
}

/**
 * pool.configure() with a partial read from JSON, where null stands for undefined (back to the default) at the top.
 * A bad partial throws FST_LB_INVALID_OPTION and changes nothing; null when nothing changed.
 */
export function configurePool (pool: Pool, partial: Record<string, unknown>, at: number): ConfigureChange | null {
  const policy: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(partial)) policy[key] = value === null ? undefined : value
  const before = pool.options.source
  const { changed } = pool.configure(policy as PoolPolicy)
  if (changed.length === 0) return null
  const after = pool.options.source
  return {
    kind: 'configure',
    at,
    pool: pool.name,
    changed,
    from: Object.fromEntries(changed.map((key) => [key, shown(before[key])])),
    to: Object.fromEntries(changed.map((key) => [key, shown(after[key])]))
  }
}
