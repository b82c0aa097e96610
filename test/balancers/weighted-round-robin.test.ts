import { test } from 'tap'
import type { Target } from '../../lib/pool/target'
import { EXACT_MAX_TARGETS, weightedRoundRobin } from '../../lib/balancers/weighted-round-robin'
import { ctx, many, seeded, sequence, tally, weighted } from './fixtures'

/** nginx ngx_http_upstream_get_peer, transcribed: the reference sequence. */
function nginx (targets: Target[], count: number): string {
  const current = targets.map(() => 0)
  const ids: string[] = []
  for (let n = 0; n < count; n++) {
    let best = -1
    let total = 0
    targets.forEach((t, i) => {
      current[i] += t.effectiveWeight
      total += t.effectiveWeight
      if (best === -1 || current[i] > current[best]) best = i
    })
    current[best] -= total
    ids.push(targets[best].id)
  }
  return ids.join(' ')
}

test('nginx smooth sequences', async (t) => {
  const cases: Array<[number[], string]> = [
    [[5, 1, 1], 'a a b a c a a a a b a c a a'],
    [[1, 1, 1], 'a b c a b c'],
    [[2, 1], 'a b a a b a'],
    [[3, 2], 'a b a b a']
  ]
  for (const [weights, expected] of cases) {
    const wrr = weightedRoundRobin({})
    wrr.update(weighted(...weights))
    t.equal(sequence(wrr, expected.split(' ').length), expected, weights.join(','))
  }
})

test('equals nginx step for step on random small sets, fractional weights included', async (t) => {
  const random = seeded(11)
  for (let round = 0; round < 50; round++) {
    const n = 1 + Math.floor(random() * EXACT_MAX_TARGETS)
    const targets = weighted(...Array.from({ length: n }, () => 1 + Math.floor(random() * 10)))
    if (round % 5 === 0) targets[0].effectiveWeight = 0.3 // slow start
    const wrr = weightedRoundRobin({})
    wrr.update(targets)
    t.equal(sequence(wrr, 300), nginx(targets, 300), `set ${round} of ${n} targets`)
  }
})

test('large sets: exact shares over each cycle, strict rotation for equal weights', async (t) => {
  const random = seeded(5)
  const targets = many(1000)
  for (const target of targets) target.effectiveWeight = 1 + Math.floor(random() * 5)
  const total = targets.reduce((sum, target) => sum + target.effectiveWeight, 0)
  const wrr = weightedRoundRobin({})
  wrr.update(targets)
  for (let cycle = 0; cycle < 3; cycle++) {
    const counts = tally(wrr, total)
    const wrong = targets.filter((target) => counts.get(target.id) !== target.effectiveWeight)
    t.equal(wrong.length, 0, `cycle ${cycle}: every target picked exactly its weight`)
  }

  const equal = many(EXACT_MAX_TARGETS + 1)
  wrr.update(equal)
  const expected = [...equal, ...equal].map((target) => target.id).join(' ')
  t.equal(sequence(wrr, 2 * equal.length), expected)
})

test('large sets interleave a heavy target instead of bunching it', async (t) => {
  const targets = many(EXACT_MAX_TARGETS + 1)
  targets[0].effectiveWeight = EXACT_MAX_TARGETS + 1
  const wrr = weightedRoundRobin({})
  wrr.update(targets)
  // One cycle: it takes about every other pick, and should never run three in a row.
  const ids = sequence(wrr, 2 * EXACT_MAX_TARGETS + 1).split(' ')
  let run = 0
  let longest = 0
  for (const id of ids) {
    run = id === targets[0].id ? run + 1 : 0
    longest = Math.max(longest, run)
  }
  t.ok(longest <= 2, `longest run ${longest}`)
  t.equal(ids.filter((id) => id === targets[0].id).length, EXACT_MAX_TARGETS + 1)
})

test('an update keeps the schedule of targets that stay', async (t) => {
  const [a, b, c] = weighted(5, 1, 1)
  const wrr = weightedRoundRobin({})
  wrr.update([a, b, c])
  t.equal(sequence(wrr, 3), 'a a b')
  wrr.update([a, b, c])
  t.equal(sequence(wrr, 4), 'a c a a')

  const big = many(100)
  wrr.update(big)
  t.equal(sequence(wrr, 3), 't00000 t00001 t00002')
  wrr.update(big.slice(1))
  t.equal(sequence(wrr, 2), 't00003 t00004', 'resumes where it was')
  wrr.update(big)
  const cycle = sequence(wrr, 100).split(' ')
  t.equal(cycle[0], 't00005', 'the schedule goes on')
  t.equal(new Set(cycle).size, 100, 'the newcomer takes one turn in the next cycle, like everyone')
})

test('an empty set picks nothing; zero weight is never picked', async (t) => {
  const wrr = weightedRoundRobin({})
  t.equal(wrr.pick(ctx()), undefined)
  wrr.update(many(100))
  wrr.update([])
  t.equal(wrr.pick(ctx()), undefined)
  const big = many(100)
  big[7].effectiveWeight = 0
  wrr.update(big)
  t.notOk(tally(wrr, 1000).has(big[7].id))
})
