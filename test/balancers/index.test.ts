import { test } from 'tap'
import { algorithms, type AlgorithmName } from '../../lib/balancers'
import { ctx, weighted } from './fixtures'

test('every algorithm copes with empty sets and changing membership', async (t) => {
  const names = Object.keys(algorithms) as AlgorithmName[]
  t.same(names.sort(), ['consistent-hash', 'ip-hash', 'least-connections', 'maglev', 'p2c-ewma', 'random', 'round-robin', 'weighted-round-robin'])
  const [a, b, c] = weighted(1, 2, 3)
  const context = ctx({ key: 'session-1', ip: '198.51.100.4' })
  for (const name of names) {
    const lb = algorithms[name]({})
    t.equal(lb.pick(context), undefined, `${name}: nothing before update`)
    lb.update([a, b, c])
    const first = lb.pick(context)
    t.ok(first !== undefined && [a, b, c].includes(first), `${name}: picks a member`)
    lb.update([b, c])
    for (let i = 0; i < 20; i++) {
      const picked = lb.pick(context)
      if (picked !== b && picked !== c) t.fail(`${name}: picked ${picked?.id} after it left`)
    }
    lb.update([])
    t.equal(lb.pick(context), undefined, `${name}: nothing after update([])`)
  }
})
