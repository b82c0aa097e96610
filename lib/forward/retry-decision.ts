import type { ResolvedBackoff, ResolvedRetry } from '../options/resolve'

/** What becomes of a failed try: 'retry', or why not. */
export type RetryVerdict = 'retry' | 'not-replayable' | 'method' | 'attempts' | 'no-target' | 'deadline' | 'budget'

export interface FailedTry {
  /**
   * The try reached an upstream: a retry needs a method of the policy, an
   * attempt left and the budget's consent, and waits its back-off first. A try
   * that sent nothing (a refused connection, one that never got a connection)
   * needs only a body that can be sent again and another target, and goes at once.
   */
  budgeted: boolean
  /** The request's body can be sent again (read whole, or none). */
  replayable: boolean
  method: string
  /** Budgeted retries the request has made so far. */
  retries: number
  /** ms left before the request's deadline (negative once it passed); Infinity without one. */
  remaining: number
}

export interface RetryPlan {
  readonly verdict: RetryVerdict
  /** ms to wait before the retry is sent; 0 for at once. */
  readonly wait: number
}

/** Refusals carry no wait: one object each, so an outage that refuses every retry allocates nothing for it. */
const refused = (verdict: RetryVerdict): RetryPlan => Object.freeze({ verdict, wait: 0 })
const NOT_REPLAYABLE = refused('not-replayable')
const METHOD = refused('method')
const ATTEMPTS = refused('attempts')
const NO_TARGET = refused('no-target')
const DEADLINE = refused('deadline')
const BUDGET = refused('budget')

/**
 * The wait before the n-th budgeted retry of a request (n from 1): Envoy's
 * fully jittered exponential back-off, a random time in
 * [0, min(max, base × (2^n − 1))), so 25, 75, 175 ms ceilings with base 25.
 * Full jitter spreads the retries of a burst that failed together instead of
 * sending them back in step.
 */
export function backoffDelay (backoff: ResolvedBackoff | null, n: number, random: () => number): number {
  if (backoff === null) return 0
  // From n = 30 on, 2^n − 1 times any base is past every max: the exponent stops there, so it stays exact.
  const ceiling = Math.min(backoff.max, backoff.base * (2 ** Math.min(n, 30) - 1))
  return random() * ceiling
}

/**
 * The retry decision, in the order its conditions are asked: the body, the
 * method, the attempts, a target to go to, the deadline, the budget.
 * `findTarget` and `withdraw` have effects on the pool (a pick, a
 * withdrawal), so they are asked only when everything before them allows a
 * retry: a retry with nowhere to go spends no budget, and neither does one
 * the deadline refuses. A retry whose back-off would end at or after the
 * deadline is refused now: it could only be cut, and the answer in hand is
 * worth more to the client than a 504 later. `random` draws the back-off's jitter.
 */
export function decideRetry (
  failed: FailedTry,
  policy: ResolvedRetry,
  findTarget: () => boolean,
  withdraw: () => boolean,
  random: () => number
): RetryPlan {
  if (!failed.replayable) return NOT_REPLAYABLE
  if (failed.budgeted) {
    if (!policy.methods.has(failed.method)) return METHOD
    if (failed.retries >= policy.attempts) return ATTEMPTS
  }
  if (!findTarget()) return NO_TARGET
  const wait = failed.budgeted ? backoffDelay(policy.backoff, failed.retries + 1, random) : 0
  if (wait >= failed.remaining) return DEADLINE
  if (failed.budgeted && !withdraw()) return BUDGET
  return { verdict: 'retry', wait }
}
