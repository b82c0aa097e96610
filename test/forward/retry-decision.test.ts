import { test } from 'tap'
import { decideRetry, type FailedTry } from '../../lib/forward/retry-decision'
import { resolvePoolOptions } from '../../lib/options/resolve'

const policy = resolvePoolOptions('p', { retry: { attempts: 2 } }).retry
const sent: FailedTry = { budgeted: true, replayable: true, method: 'GET', retries: 0 }
const notSent: FailedTry = { budgeted: false, replayable: true, method: 'POST', retries: 5 }

/** Runs the decision and records which of the effectful questions were asked. */
function decide (failed: FailedTry, target = true, budget = true, retry = policy): { verdict: string, asked: string[] } {
  const asked: string[] = []
  const verdict = decideRetry(failed, retry, () => { asked.push('target'); return target }, () => { asked.push('budget'); return budget })
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
