import { test } from 'tap'
import { RetryBudget } from '../../lib/forward/retry-budget'

test('retries over ten seconds stay within the share of requests plus the reserve', async (t) => {
  let now = 1_000_000
  const budget = new RetryBudget(0.2, 0, () => now)
  for (let i = 0; i < 50; i++) budget.deposit()
  const granted = Array.from({ length: 15 }, () => budget.withdraw()).filter(Boolean).length
  t.equal(granted, 10, '20% of 50 requests')
  now += 5000
  t.notOk(budget.withdraw(), 'still spent five seconds later')
  now += 5000
  for (let i = 0; i < 10; i++) budget.deposit()
  t.equal(Array.from({ length: 5 }, () => budget.withdraw()).filter(Boolean).length, 2, 'after ten seconds only the new requests count')
})

test('the reserve lets a quiet pool retry', async (t) => {
  let now = 0
  const budget = new RetryBudget(0.2, 1, () => now)
  t.equal(Array.from({ length: 15 }, () => budget.withdraw()).filter(Boolean).length, 10, 'one per second over the window, without any request')
  now += 60_000
  t.ok(budget.withdraw(), 'a minute later the window is fresh')
})

test('a burst of resets after a healthy spell is covered', async (t) => {
  let now = 0
  const budget = new RetryBudget(0.2, 10, () => now)
  for (let s = 0; s < 10; s++) {
    now = s * 1000
    for (let i = 0; i < 200; i++) budget.deposit()
  }
  // A crash cuts 60 requests at once: 20% of 2,000 recent requests plus the reserve cover them.
  t.equal(Array.from({ length: 60 }, () => budget.withdraw()).filter(Boolean).length, 60)
})
