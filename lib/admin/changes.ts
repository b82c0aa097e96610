/** A target's state as the admin API sets it: taking picks, in maintenance (pool.disable), or leaving (pool.drain). */
export type AdminTargetState = 'enabled' | 'disabled' | 'draining'

/** A target's weight changed (pool.setWeight). */
export interface WeightChange {
  kind: 'weight'
  /** When it was applied (epoch ms). */
  at: number
  pool: string
  target: string
  from: number
  to: number
}

/** A target was enabled, disabled or set draining. */
export interface StateChange {
  kind: 'state'
  at: number
  pool: string
  target: string
  from: AdminTargetState
  to: AdminTargetState
}

/** A route's split got new weights (split.setWeights), by pool. */
export interface SplitChange {
  kind: 'split'
  at: number
  route: string
  from: Record<string, number>
  to: Record<string, number>
}

/**
 * A pool's policy changed (pool.configure): the options that changed, with their values before and after as JSON
 * (a secret shown as '[redacted]', a function as '[function]', an option back to its default as null).
 */
export interface ConfigureChange {
  kind: 'configure'
  at: number
  pool: string
  /** The options that changed (PolicyKey names), in the order configure() lists them. */
  changed: string[]
  from: Record<string, unknown>
  to: Record<string, unknown>
}

/** One change the admin API made: logged once, emitted as `app.lb`'s 'admin' event, listed on the status page. */
export type AdminChange = WeightChange | StateChange | SplitChange | ConfigureChange

/** Changes the status page lists: the most recent ones. */
export const CHANGES_KEPT = 20

/** The last CHANGES_KEPT changes, oldest first: a bounded list, whatever the number of calls. */
export class ChangeLog {
  private readonly changes: AdminChange[] = []

  push (change: AdminChange): void {
    if (this.changes.length === CHANGES_KEPT) this.changes.shift()
    this.changes.push(change)
  }

  list (): AdminChange[] {
    return this.changes.slice()
  }
}

/** A change in words, for its log line and the status page. */
export function describeChange (change: AdminChange): string {
  switch (change.kind) {
    case 'weight': return `weight of target "${change.target}" of pool "${change.pool}" from ${change.from} to ${change.to}`
    case 'state': return `target "${change.target}" of pool "${change.pool}" from ${change.from} to ${change.to}`
    case 'split': return `weights of split "${change.route}" from ${JSON.stringify(change.from)} to ${JSON.stringify(change.to)}`
    case 'configure': return `policy of pool "${change.pool}": ${change.changed.join(', ')}`
  }
}

/** The JSON schema of a change, in the admin API's answers and the status report. */
export const changeSchema = {
  type: 'object',
  required: ['kind', 'at', 'from', 'to'],
  properties: {
    kind: { type: 'string', enum: ['weight', 'state', 'split', 'configure'] },
    at: { type: 'number' },
    pool: { type: 'string' },
    target: { type: 'string' },
    route: { type: 'string' },
    changed: { type: 'array', items: { type: 'string' } },
    from: {},
    to: {}
  }
} as const
