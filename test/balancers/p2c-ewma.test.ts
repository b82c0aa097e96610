import { test } from 'tap'
import { p2cEwma } from '../../lib/balancers/p2c-ewma'
import { ctx, seeded, tally, weighted } from './fixtures'

test('prefers the fast target and still sends some requests to slow ones', async (t) => {
  const targets = weighted(1, 1, 1)
  const [a, b, c] = targets
  const now = 1000
  a.observeLatency(10, now)
  b.observeLatency(200, now)
  c.observeLatency(200, now)
  const lb = p2cEwma({ random: seeded(42), now: () => now })
  lb.update(targets)
  const picks = 30_000
  const counts = tally(lb, picks)
  // a wins every draw it is in (2 of 3 pairs); b and c only meet each other.
  const share = (id: string): number => (counts.get(id) ?? 0) / picks
  t.ok(Math.abs(share('a') - 2 / 3) < 0.02, `fast target share ${share('a')}`)
  t.ok(Math.abs(share('b') - 1 / 6) < 0.02, `slow target share ${share('b')}`)
  t.ok(Math.abs(share('c') - 1 / 6) < 0.02, `slow target share ${share('c')}`)
})

test('in-flight requests count against a target', async (t) => {
  const [a, b] = weighted(1, 1)
  const lb = p2cEwma({ random: seeded(1), now: () => 0 })
  lb.update([a, b])
  a.inFlight = 3
  t.equal(lb.pick(ctx()), b)
  b.inFlight = 5
  t.equal(lb.pick(ctx()), a)
})

test('a slow target is probed again once its latency has decayed', async (t) => {
  const [a, b] = weighted(1, 1)
  let now = 1
  a.observeLatency(50, now)
  b.observeLatency(5000, now)
  const lb = p2cEwma({ random: seeded(3), now: () => now })
  lb.update([a, b])
  let probedAt = -1
  for (let step = 0; step < 1000 && probedAt < 0; step++) {
    now += 100
    const target = lb.pick(ctx())
    if (target === b) probedAt = now
    else a.observeLatency(50, now)
  }
  // 5000 ms decays below 50 ms after 10 s x ln(100), about 46 s.
  t.ok(probedAt > 40_000 && probedAt < 50_000, `probed at ${probedAt} ms`)
})

test('draws two distinct targets, whatever the random source returns', async (t) => {
  const targets = weighted(1, 1, 1)
  for (const value of [0, 0.5, 0.999999, 1]) {
    const lb = p2cEwma({ random: () => value, now: () => 0 })
    lb.update(targets)
    targets[0].inFlight = 1 // so that a distinct second draw is visible when the first is a
    const picked = lb.pick(ctx())
    t.ok(picked !== undefined && targets.includes(picked), `random ${value}`)
    targets[0].inFlight = 0
  }
  const lb = p2cEwma({ random: () => 0, now: () => 0 })
  lb.update(targets)
  targets[0].inFlight = 1
  t.equal(lb.pick(ctx()), targets[1], 'i = 0 and j = 0 become a and b')
  targets[0].inFlight = 0
})

test('one target is returned as is, none gives undefined', async (t) => {
  const [a] = weighted(1)
  const lb = p2cEwma({})
  t.equal(lb.pick(ctx()), undefined)
  lb.update([a])
  t.equal(lb.pick(ctx()), a)
  lb.update([])
  t.equal(lb.pick(ctx()), undefined)
  lb.update(weighted(1, 1))
  t.ok(lb.pick(ctx()), 'defaults to Math.random and performance.now')
})
