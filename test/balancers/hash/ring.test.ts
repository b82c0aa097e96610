import { test } from 'tap'
import type { Target } from '../../../lib/pool/target'
import type { Balancer } from '../../../lib/balancers/balancer'
import { consistentHash } from '../../../lib/balancers/hash/ring'
import { murmur3 } from '../../../lib/balancers/hash/murmur3'
import { ctx, many, spread, tally, target, weighted } from '../fixtures'

function ring (targets: Target[], balanceFactor = 0): Balancer {
  const lb = consistentHash({ balanceFactor })
  lb.update(targets)
  return lb
}

function owners (lb: Balancer, keys: number): string[] {
  return Array.from({ length: keys }, (_, i) => lb.pick(ctx({ key: `user-${i}` }))?.id ?? '-')
}

test('a key maps to one target, on any replica', async (t) => {
  const first = owners(ring(weighted(1, 1, 1, 1, 1)), 1000)
  t.same(owners(ring(weighted(1, 1, 1, 1, 1)), 1000), first)
  t.equal(new Set(first).size, 5, 'and all targets get keys')
})

/** The ring as specified, by brute force: the owner of the first point at or after the key's hash. */
function referenceRing (targets: Target[], pointsPerWeight: number): (key: string) => string {
  const points: Array<[number, string]> = []
  for (const x of [...targets].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const count = Math.max(1, Math.round(pointsPerWeight * x.effectiveWeight))
    for (let i = 0; i < count; i++) points.push([murmur3(x.id, i), x.id])
  }
  points.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
  return (key) => {
    const h = murmur3(key)
    return (points.find(([p]) => p >= h) ?? points[0])[1]
  }
}

test('lookups agree with a brute-force ring, small and large', async (t) => {
  for (const [targets, pointsPerWeight] of [[weighted(1, 2, 1, 3), 160], [weighted(1, 1), 1], [weighted(0.5), 3], [many(300), 40]] as const) {
    const lb = consistentHash({ pointsPerWeight })
    lb.update(targets)
    const owner = referenceRing(targets, pointsPerWeight)
    let wrong = 0
    for (let i = 0; i < 3000; i++) {
      const key = `k${i}`
      if (lb.pick(ctx({ key }))?.id !== owner(key)) wrong++
    }
    t.equal(wrong, 0, `${targets.length} targets, ${pointsPerWeight} points per weight`)
  }
})

test('input order does not matter', async (t) => {
  const targets = many(20)
  const shuffled = [...targets.slice(7), ...targets.slice(0, 7).reverse()]
  t.same(owners(ring(shuffled), 10_000), owners(ring(targets), 10_000))
})

test('10k keys over 5 equal targets: each within 15% of even', async (t) => {
  const counts = tally(ring(weighted(1, 1, 1, 1, 1)), 10_000, (i) => ctx({ key: `user-${i}` }))
  t.equal(counts.size, 5)
  t.ok(spread(counts.values()) <= 0.15, `spread ${spread(counts.values())}`)
})

test('100k keys over 10 targets: within 20% of even', async (t) => {
  // 160 points give each target an arc share with a relative standard
  // deviation of about 1/sqrt(160) = 8%: 20% is 2.5 of those.
  const counts = tally(ring(many(10)), 100_000, (i) => ctx({ key: `user-${i}` }))
  t.equal(counts.size, 10)
  t.ok(spread(counts.values()) <= 0.2, `spread ${spread(counts.values())}`)
})

test('removing 1 of 5 targets moves about a fifth of the keys, all from it', async (t) => {
  const targets = weighted(1, 1, 1, 1, 1)
  const before = owners(ring(targets), 10_000)
  const after = owners(ring(targets.filter((x) => x.id !== 'c')), 10_000)
  let moved = 0
  let betweenSurvivors = 0
  for (let i = 0; i < before.length; i++) {
    if (before[i] === after[i]) continue
    moved++
    if (before[i] !== 'c') betweenSurvivors++
  }
  t.ok(moved / before.length >= 0.15 && moved / before.length <= 0.25, `moved ${moved / before.length}`)
  t.equal(betweenSurvivors, 0)
})

test('points follow effective weight', async (t) => {
  const counts = tally(ring(weighted(1, 3)), 20_000, (i) => ctx({ key: `k${i}` }))
  const share = (counts.get('b') ?? 0) / 20_000
  t.ok(share > 0.7 && share < 0.8, `weight 3 of 4 takes ${share}`)
})

test('no key, no target: undefined so the pool falls back', async (t) => {
  const lb = ring(weighted(1, 1))
  t.equal(lb.pick(ctx()), undefined)
  lb.update([])
  t.equal(lb.pick(ctx({ key: 'x' })), undefined)
  t.throws(() => consistentHash({ pointsPerWeight: 0 }), RangeError)
})

test('a retry goes to another target, never one already tried', async (t) => {
  const targets = weighted(1, 1, 1)
  const lb = ring(targets)
  t.equal(lb.skipsTried, true)
  let wrong = 0
  for (let i = 0; i < 200; i++) {
    const key = `user-${i}`
    const first = lb.pick(ctx({ key }))
    const second = lb.pick(ctx({ key, tried: first === undefined ? [] : [first] }))
    const third = lb.pick(ctx({ key, tried: [first, second].filter((x) => x !== undefined) }))
    const distinct = new Set([first, second, third])
    if (distinct.size !== 3 || distinct.has(undefined)) wrong++
    if (lb.pick(ctx({ key, tried: targets })) !== undefined) wrong++
    // The same retry path for the same key, on every replica.
    if (lb.pick(ctx({ key, tried: first === undefined ? [] : [first] })) !== second) wrong++
  }
  t.equal(wrong, 0)
})

test('bounded loads keep every target within capacity under a hot key', async (t) => {
  const factor = 1.25
  const targets = many(5)
  const lb = ring(targets, factor)
  let poolInFlight = 0
  let overCapacity = 0
  for (let i = 0; i < 500; i++) {
    const capacity = Math.ceil(factor * (poolInFlight + 1) / targets.length)
    const picked = lb.pick(ctx({ key: 'hot', poolInFlight }))
    if (picked === undefined) throw new Error('no target')
    picked.inFlight++
    poolInFlight++
    if (picked.inFlight > capacity) overCapacity++
  }
  t.equal(overCapacity, 0)
  const loads = targets.map((x) => x.inFlight)
  t.ok(Math.max(...loads) <= Math.ceil(factor * 500 / 5), `loads ${loads}`)

  // Without bounds the same key piles onto one target.
  const unbounded = ring(many(5))
  t.equal(tally(unbounded, 100, () => ctx({ key: 'hot', poolInFlight: 1000 })).size, 1)
})

test('bounded loads: when every untried target is full, the first untried one', async (t) => {
  const targets = weighted(1, 1, 1)
  const lb = ring(targets, 1.25)
  const home = lb.pick(ctx({ key: 'k' }))
  if (home === undefined) throw new Error('no target')
  for (const x of targets) x.inFlight = 10 // poolInFlight says 0: capacity 1
  t.equal(lb.pick(ctx({ key: 'k' })), home)
  const next = lb.pick(ctx({ key: 'k', tried: [home] }))
  t.ok(next !== undefined && next !== home)
  // One target with room is found past the full ones.
  const spare = targets.find((x) => x !== home && x !== next) ?? home
  spare.inFlight = 0
  t.equal(lb.pick(ctx({ key: 'k' })), spare)
})

test('a single target', async (t) => {
  const solo = target('solo')
  const lb = ring([solo], 1.25)
  solo.inFlight = 50
  t.equal(lb.pick(ctx({ key: 'a' })), solo)
  t.equal(lb.pick(ctx({ key: 'a', tried: [solo] })), undefined)
})
