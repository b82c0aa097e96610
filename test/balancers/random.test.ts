import { test } from 'tap'
import { random } from '../../lib/balancers/random'
import { ctx, seeded, tally, weighted } from './fixtures'

test('draws in proportion to weight', async (t) => {
  const lb = random({ random: seeded(9) })
  lb.update(weighted(1, 2, 3, 0))
  const picks = 60_000
  const counts = tally(lb, picks)
  // Binomial standard deviation is at most 0.2% here: 1% is five of them.
  for (const [id, share] of [['a', 1 / 6], ['b', 2 / 6], ['c', 3 / 6]] as const) {
    const got = (counts.get(id) ?? 0) / picks
    t.ok(Math.abs(got - share) < 0.01, `${id}: ${got}`)
  }
  t.notOk(counts.has('d'), 'zero weight is never drawn')
})

test('the alias table is exact: every column and coin value, enumerated', async (t) => {
  const weights = [1, 2, 3, 0, 5, 0.5, 4, 1]
  const n = weights.length
  const coins = 1000
  // Alternate column draws and coin draws so that each (column, coin) pair comes once.
  let call = 0
  const grid = (): number => {
    const pair = call >> 1
    const value = call % 2 === 0 ? (Math.floor(pair / coins) + 0.5) / n : (pair % coins + 0.5) / coins
    call++
    return value
  }
  const lb = random({ random: grid })
  lb.update(weighted(...weights))
  const counts = tally(lb, n * coins)
  const sum = weights.reduce((a, b) => a + b, 0)
  weights.forEach((w, i) => {
    const id = String.fromCharCode(97 + i)
    const share = (counts.get(id) ?? 0) / (n * coins)
    t.ok(Math.abs(share - w / sum) <= 1 / coins, `${id}: ${share} for ${w / sum}`)
  })
})

test('the built-in generator draws in proportion too', async (t) => {
  const lb = random({})
  lb.update(weighted(1, 3))
  const share = (tally(lb, 40_000).get('b') ?? 0) / 40_000
  // 0.75 with a standard deviation of 0.2%: 1.5% is seven of them.
  t.ok(Math.abs(share - 0.75) < 0.015, `b: ${share}`)
})

test('equal weights are drawn uniformly', async (t) => {
  const lb = random({ random: seeded(10) })
  lb.update(weighted(2, 2, 2, 2))
  const counts = tally(lb, 40_000)
  for (const id of ['a', 'b', 'c', 'd']) {
    t.ok(Math.abs((counts.get(id) ?? 0) - 10_000) < 400, `${id}: ${counts.get(id)}`)
  }
})

test('whatever the random source returns, a weighted target comes out', async (t) => {
  const targets = weighted(0, 1, 0, 3, 0)
  const got = new Set<string>()
  for (let r = 0; r <= 1; r += 1 / 64) {
    const lb = random({ random: () => r })
    lb.update(targets)
    got.add(lb.pick(ctx())?.id ?? '-')
  }
  t.same([...got].sort(), ['b', 'd'])
})

test('an empty set picks nothing; all-zero weights are drawn uniformly', async (t) => {
  const lb = random({})
  t.equal(lb.pick(ctx()), undefined)
  lb.update(weighted(0, 0))
  t.ok(lb.pick(ctx()))
  lb.update([])
  t.equal(lb.pick(ctx()), undefined)
})
