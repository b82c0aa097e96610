import { test } from 'tap'
import type { Target } from '../../lib/pool/target'
import type { Balancer } from '../../lib/balancers/balancer'
import { leastConnections } from '../../lib/balancers/least-connections'
import { ctx, many, sequence, weighted } from './fixtures'

/** What the pool does around a request: count it in flight, and out again. */
function start (lb: Balancer): Target {
  const target = lb.pick(ctx())
  if (target === undefined) throw new Error('no target')
  target.inFlight++
  lb.loadChanged?.(target)
  return target
}
function finish (lb: Balancer, target: Target): void {
  target.inFlight--
  lb.loadChanged?.(target)
}

test('idle equal targets take turns when requests complete at once', async (t) => {
  const lb = leastConnections({})
  lb.update(weighted(1, 1, 1))
  const ids: string[] = []
  for (let i = 0; i < 7; i++) {
    const target = start(lb)
    ids.push(target.id)
    finish(lb, target)
  }
  t.equal(ids.join(' '), 'a b c a b c a')
})

test('picks the fewest in flight', async (t) => {
  const [a, b, c] = weighted(1, 1, 1)
  const lb = leastConnections({})
  lb.update([a, b, c])
  a.inFlight = 5
  b.inFlight = 1
  c.inFlight = 3
  for (const target of [a, b, c]) lb.loadChanged?.(target)
  t.equal(lb.pick(ctx()), b)
  b.inFlight = 4
  lb.loadChanged?.(b)
  t.equal(lb.pick(ctx()), c)
  c.inFlight = 9
  lb.loadChanged?.(c)
  t.equal(lb.pick(ctx()), b)
})

test('load is in-flight per unit of effective weight', async (t) => {
  const [a, b] = weighted(4, 1)
  const lb = leastConnections({})
  lb.update([a, b])
  a.inFlight = 3 // 0.75 per unit
  b.inFlight = 1 // 1 per unit
  lb.loadChanged?.(a)
  lb.loadChanged?.(b)
  t.equal(lb.pick(ctx()), a)
  // Concurrent requests fill the targets in proportion to weight.
  a.inFlight = 0
  b.inFlight = 0
  lb.update([a, b])
  for (let i = 0; i < 50; i++) start(lb)
  t.same([a.inFlight, b.inFlight], [40, 10])
})

test('concurrent requests spread over a large pool evenly', async (t) => {
  const targets = many(1000)
  const lb = leastConnections({})
  lb.update(targets)
  for (let i = 0; i < 3000; i++) start(lb)
  t.ok(targets.every((target) => target.inFlight === 3))
})

test('an update keeps the rotation and ignores targets that left', async (t) => {
  const [a, b, c, d] = weighted(1, 1, 1, 1)
  const lb = leastConnections({})
  lb.update([a, b, c])
  t.equal(sequence(lb, 2), 'a b')
  const busy = start(lb) // c, still in flight
  t.equal(busy, c)
  // c is ejected; a newcomer d goes first among the idle ones.
  lb.update([a, b, d])
  t.equal(c.lbSlot, -1)
  finish(lb, c) // completes after leaving: must not disturb the heap
  t.equal(sequence(lb, 4), 'd a b d')
  lb.update([])
  t.equal(lb.pick(ctx()), undefined)
  t.equal(a.lbSlot, -1)
})

test('a target with zero effective weight comes last', async (t) => {
  const [a, b] = weighted(1, 1)
  a.effectiveWeight = 0
  const lb = leastConnections({})
  lb.update([a, b])
  b.inFlight = 100
  lb.loadChanged?.(b)
  t.equal(lb.pick(ctx()), b)
})
