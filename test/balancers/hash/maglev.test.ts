import { test } from 'tap'
import type { Target } from '../../../lib/pool/target'
import type { Balancer } from '../../../lib/balancers/balancer'
import { fillTable, maglev } from '../../../lib/balancers/hash/maglev'
import { ctx, many, spread, tally, weighted } from '../fixtures'

function table (targets: Target[], tableSize?: number): Balancer {
  const lb = maglev({ tableSize })
  lb.update(targets)
  return lb
}

function entries (targets: Target[], size: number): number[] {
  const counts = targets.map(() => 0)
  for (const owner of fillTable(targets, size)) counts[owner]++
  return counts
}

function owners (lb: Balancer, keys: number): string[] {
  return Array.from({ length: keys }, (_, i) => lb.pick(ctx({ key: `user-${i}` }))?.id ?? '-')
}

test('equal weights own floor(M/N) or ceil(M/N) entries each', async (t) => {
  for (const [n, size] of [[7, 65537], [10, 65537], [3, 13], [1000, 65537]]) {
    const counts = entries(many(n), size)
    t.equal(counts.reduce((a, b) => a + b, 0), size)
    const floor = Math.floor(size / n)
    t.ok(counts.every((c) => c === floor || c === floor + 1), `${n} targets in ${size}: ${Math.min(...counts)}..${Math.max(...counts)}`)
  }
})

test('entries follow weights', async (t) => {
  const counts = entries(weighted(1, 2, 3, 0.5), 65537)
  const unit = 65537 / 6.5
  for (const [i, w] of [1, 2, 3, 0.5].entries()) {
    t.ok(Math.abs(counts[i] / (w * unit) - 1) < 0.001, `weight ${w}: ${counts[i]} entries`)
  }
  t.same(entries(weighted(1, 0, 1), 13), [7, 0, 6], 'zero weight: no entry')
  t.same(entries(weighted(0, 0), 13).sort(), [6, 7], 'all weights zero: an equal share')
})

test('100k keys over 10 targets: within 5% of even', async (t) => {
  // Entries are even to one in 6553, so the spread is the keys' own sampling
  // noise: a 1% standard deviation per target.
  const counts = tally(table(many(10)), 100_000, (i) => ctx({ key: `user-${i}` }))
  t.equal(counts.size, 10)
  t.ok(spread(counts.values()) <= 0.05, `spread ${spread(counts.values())}`)
})

test('input order does not matter', async (t) => {
  const targets = many(30)
  t.same(owners(table([...targets].reverse()), 10_000), owners(table(targets), 10_000))
})

test('removing 1 of 10 targets moves few keys besides its own', async (t) => {
  const targets = many(10)
  const before = owners(table(targets), 20_000)
  const after = owners(table(targets.filter((_, i) => i !== 4)), 20_000)
  let moved = 0
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++
  // A tenth must move; Maglev's table shuffles a little more than a ring.
  t.ok(moved / before.length >= 0.09 && moved / before.length <= 0.15, `moved ${moved / before.length}`)
})

test('retries fall through to the next entries, never to a target tried', async (t) => {
  const targets = weighted(1, 1, 1)
  const lb = table(targets, 13)
  t.equal(lb.skipsTried, true)
  let wrong = 0
  for (let i = 0; i < 100; i++) {
    const key = `k${i}`
    const first = lb.pick(ctx({ key }))
    const second = lb.pick(ctx({ key, tried: first === undefined ? [] : [first] }))
    if (first === undefined || second === undefined || second === first) wrong++
    if (lb.pick(ctx({ key, tried: targets })) !== undefined) wrong++
  }
  t.equal(wrong, 0)
})

test('no key, no targets, a table size that is not prime', async (t) => {
  const lb = table(weighted(1, 1))
  t.equal(lb.pick(ctx()), undefined)
  lb.update([])
  t.equal(lb.pick(ctx({ key: 'x' })), undefined)
  t.throws(() => maglev({ tableSize: 65536 }), RangeError)
  t.throws(() => maglev({ tableSize: 1 }), RangeError)
})

test('bounded loads spread a hot key', async (t) => {
  const targets = many(4)
  const lb = maglev({ balanceFactor: 1.5 })
  lb.update(targets)
  for (let i = 0; i < 100; i++) {
    const picked = lb.pick(ctx({ key: 'hot', poolInFlight: i }))
    if (picked === undefined) throw new Error('no target')
    picked.inFlight++
  }
  t.ok(targets.every((x) => x.inFlight <= Math.ceil(1.5 * 100 / 4)), `loads ${targets.map((x) => x.inFlight)}`)
})
