import { test } from 'tap'
import { backoffDelay, decideRetry, type FailedTry } from '../../lib/forward/retry-decision'
import { resolvePoolOptions } from '../../lib/options/resolve'

const policy = resolvePoolOptions('p', { retry: { attempts: 2, backoff: false } }).retry
const sent: FailedTry = { budgeted: true, replayable: true, method: 'GET', retries: 0, remaining: Infinity }
const notSent: FailedTry = { budgeted: false, replayable: true, method: 'POST', retries: 5, remaining: Infinity }

/** A random source that hands out `values` in turn and counts its draws. */
function fakeRandom (...values: number[]): { random: () => number, draws: number } {
  const source = {
    draws: 0,
    random: () => values[source.draws++ % values.length]
  }
  return source
}

/** Runs the decision and records which of the effectful questions were asked. */
function decide (failed: FailedTry, target = true, budget = true, retry = policy, random = Math.random): { verdict: string, asked: string[] } {
  const asked: string[] = []
  const { verdict } = decideRetry(failed, retry, () => { asked.push('target'); return target }, () => { asked.push('budget'); return budget }, random)
  return { verdict, asked }
}

test('a try that reached an upstream is retried with a method of the policy, an attempt left, a target and the budget', async (t) => {
  t.same(decide(sent), { verdict: 'retry', asked: ['target', 'budget'] })
  t.same(decide({ ...sent, method: 'PUT', retries: 1 }), { verdict: 'retry', asked: ['target', 'budget'] })
  t.same(decide({ ...sent, method: 'POST' }), { verdict: 'method', asked: [] }, 'POST is never sent twice')
  t.same(decide({ ...sent, retries: 2 }), { verdict: 'attempts', asked: [] }, 'attempts used up: no pick, no budget')
  t.same(decide({ ...sent, replayable: false }), { verdict: 'not-replayable', asked: [] }, 'a streamed body cannot be sent again')
  t.same(decide(sent, false), { verdict: 'no-target', asked: ['target'] }, 'nowhere to go: the budget is not asked, so nothing is spent')
  t.same(decide(sent, true, false), { verdict: 'budget', asked: ['target', 'budget'] })
  const off = resolvePoolOptions('p', { retry: false }).retry
  t.same(decide(sent, true, true, off), { verdict: 'attempts', asked: [] }, 'retry: false allows no retry of a sent try')
})

test('a try that sent nothing goes elsewhere whatever its method and retries, free of budget', async (t) => {
  t.same(decide(notSent), { verdict: 'retry', asked: ['target'] }, 'the budget is never asked')
  t.same(decide(notSent, true, false), { verdict: 'retry', asked: ['target'] }, 'nor could it refuse')
  t.same(decide(notSent, false), { verdict: 'no-target', asked: ['target'] })
  t.same(decide({ ...notSent, replayable: false }), { verdict: 'not-replayable', asked: [] })
  const off = resolvePoolOptions('p', { retry: false }).retry
  t.same(decide(notSent, true, true, off), { verdict: 'retry', asked: ['target'] }, 'retry: false keeps failover of unsent tries')
})

test('back-off: fully jittered and exponential, Envoy\'s ceilings of 25, 75, 175 ms, then max', async (t) => {
  const backoff = { base: 25, max: 250 }
  const ceilings = [1, 2, 3, 4, 5, 40].map((n) => backoffDelay(backoff, n, () => 1))
  t.same(ceilings, [25, 75, 175, 250, 250, 250], 'base × (2^n − 1), at most max, however many retries')
  t.same([1, 2, 3].map((n) => backoffDelay(backoff, n, () => 0)), [0, 0, 0], 'full jitter reaches down to no wait')
  t.same([1, 2, 3, 4].map((n) => backoffDelay(backoff, n, () => 0.5)), [12.5, 37.5, 87.5, 125])
  t.equal(backoffDelay(null, 3, () => 1), 0, 'no back-off: no wait')
  const random = fakeRandom(0.5)
  t.equal(backoffDelay({ base: 60_000, max: 60_000 }, 1000, random.random), 30_000, 'a large n stays finite')
  const resolved = resolvePoolOptions('p', {}).retry.backoff
  t.same(resolved, { base: 25, max: 250 }, 'Envoy\'s defaults: base 25 ms, max 10 × base')
})

test('the decision draws the back-off of the retry it allows, and only then', async (t) => {
  const withBackoff = resolvePoolOptions('p', { retry: { attempts: 3, backoff: { base: 100, max: 1000 } } }).retry
  const random = fakeRandom(0.25, 0.5, 0.75)
  const waits = [0, 1, 2].map((retries) => decideRetry({ ...sent, retries }, withBackoff, () => true, () => true, random.random))
  t.same(waits, [{ verdict: 'retry', wait: 25 }, { verdict: 'retry', wait: 150 }, { verdict: 'retry', wait: 525 }],
    'the n-th retry waits random × min(max, base × (2^n − 1))')
  t.equal(random.draws, 3)
  const failover = decideRetry({ ...notSent, retries: 0 }, withBackoff, () => true, () => true, random.random)
  t.same(failover, { verdict: 'retry', wait: 0 }, 'a try that sent nothing goes to the next target at once')
  t.equal(random.draws, 3, 'and draws nothing')
  decideRetry({ ...sent, method: 'POST' }, withBackoff, () => true, () => true, random.random)
  decideRetry(sent, withBackoff, () => false, () => true, random.random)
  t.equal(random.draws, 3, 'a refused retry draws nothing')
  const off = resolvePoolOptions('p', { retry: { backoff: { base: 0 } } }).retry
  t.same(decideRetry(sent, off, () => true, () => true, () => 1), { verdict: 'retry', wait: 0 }, 'base 0: no back-off')
})

test('the deadline refuses a retry that could not be sent before it, after the pick and before the budget', async (t) => {
  const withBackoff = resolvePoolOptions('p', { retry: { attempts: 2, backoff: { base: 100, max: 1000 } } }).retry
  const half = (): number => 0.5
  t.same(decide({ ...sent, remaining: 51 }, true, true, withBackoff, half), { verdict: 'retry', asked: ['target', 'budget'] },
    'a back-off of 50 ms fits in 51 ms')
  t.same(decide({ ...sent, remaining: 50 }, true, true, withBackoff, half), { verdict: 'deadline', asked: ['target'] },
    'one that would end at the deadline is refused, and spends no budget')
  t.same(decide({ ...sent, remaining: -1 }, true, true, policy), { verdict: 'deadline', asked: ['target'] }, 'a deadline passed refuses even without back-off')
  t.same(decide({ ...sent, remaining: -1 }, false, true, policy), { verdict: 'no-target', asked: ['target'] },
    'with nowhere to go, the deadline refused nothing')
  t.same(decide({ ...sent, retries: 2, remaining: -1 }), { verdict: 'attempts', asked: [] }, 'nor when attempts are used up')
  t.same(decide({ ...notSent, remaining: 1 }, true, true, withBackoff, half), { verdict: 'retry', asked: ['target'] },
    'a failover of an unsent try goes while time is left')
  t.same(decide({ ...notSent, remaining: 0 }, true, true, withBackoff, half), { verdict: 'deadline', asked: ['target'] },
    'and not once the deadline passed')
})
