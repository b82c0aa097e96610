import type { ResolvedRetry } from '../options/resolve'

/** What becomes of a failed try: 'retry', or why not. */
export type RetryVerdict = 'retry' | 'not-replayable' | 'method' | 'attempts' | 'no-target' | 'budget'

export interface FailedTry {
  /**
   * The try reached an upstream: a retry needs a method of the policy, an
   * attempt left and the budget's consent. A try that sent nothing (a refused
   * connection, one that never got a connection) needs only a body that can
   * be sent again and another target.
   */
  budgeted: boolean
  /** The request's body can be sent again (read whole, or none). */
  replayable: boolean
  method: string
  /** Budgeted retries the request has made so far. */
  retries: number
}

/**
 * The retry decision, in the order its conditions are asked: the body, the
 * method, the attempts, a target to go to, the budget. `findTarget` and
 * `withdraw` have effects on the pool (a pick, a withdrawal), so they are
 * asked last and only when everything before them allows a retry: a retry
 * with nowhere to go spends no budget.
 */
export function decideRetry (failed: FailedTry, policy: ResolvedRetry, findTarget: () => boolean, withdraw: () => boolean): RetryVerdict {
  if (!failed.replayable) return 'not-replayable'
  if (failed.budgeted) {
    if (!policy.methods.has(failed.method)) return 'method'
    if (failed.retries >= policy.attempts) return 'attempts'
  }
  if (!findTarget()) return 'no-target'
  if (failed.budgeted && !withdraw()) return 'budget'
  return 'retry'
}
