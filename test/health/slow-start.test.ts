import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { rampWeight } from '../../lib/health/slow-start'
import { Client, count, sequence, startGateway, until } from '../helpers/gateway'

test('the ramp goes linearly from minWeight x weight to weight over the window', async (t) => {
  t.same([-5, 0, 250, 500, 1000, 2000].map((elapsed) => rampWeight(10, 0.1, elapsed, 1000)), [1, 1, 3.25, 5.5, 10, 10])
})

test('a target added to a pool ramps up over the window; the share it gets follows its weight', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const window = 600
  const gw = await startGateway({
    pools: { main: { algorithm: 'weighted-round-robin', targets: [{ url: ups[0].url, id: 'a', weight: 4 }], slowStart: { window } } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  t.equal(pool.get('a')!.effectiveWeight, 4, 'targets present at start take their full weight at once')
  t.equal(pool.get('a')!.state, 'healthy')

  const b = pool.add({ url: ups[1].url, id: 'b', weight: 4 })
  t.equal(b.effectiveWeight, 0.4, 'starts at 10% of its weight')
  t.equal(b.state, 'slow-start')
  const weights: number[] = []
  const batches: Array<{ from: number, to: number, share: number }> = []
  const n = 20
  while (b.slowStartUntil !== 0 && batches.length < 200) {
    const from = b.effectiveWeight
    weights.push(from)
    const served = count(await sequence(client, gw.url + '/x', n))
    batches.push({ from, to: b.effectiveWeight, share: (served.b ?? 0) / n })
  }
  t.ok(batches.length >= 2, `several batches during the window (${batches.length})`)
  t.ok(weights.every((w, i) => i === 0 || w >= weights[i - 1]), 'the weight only grows')
  // Smooth weighted round robin gives each target its weight's share within a pick or two per batch.
  const slack = 2 / n
  for (const { from, to, share } of batches) {
    t.ok(share >= from / (4 + from) - slack && share <= to / (4 + to) + slack, `share ${share} within [${(from / (4 + from)).toFixed(2)}, ${(to / (4 + to)).toFixed(2)}]`)
  }
  t.equal(b.effectiveWeight, 4, 'full weight after the window')
  t.equal(b.state, 'healthy')
  t.same(count(await sequence(client, gw.url + '/x', n)), { a: 10, b: 10 }, 'an even share after the window')
})

test('a target that turns healthy again starts slow', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const gw = await startGateway({
    pools: {
      main: {
        targets: ups.map((u) => ({ url: u.url, id: u.id, weight: 10 })),
        healthCheck: { interval: 30, jitter: 0, unhealthyThreshold: 1, healthyThreshold: 1 },
        slowStart: { window: 60_000, minWeight: 0.2 }
      }
    }
  })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const seen: Array<[string, string, number]> = []
  gw.app.lb.health.on('transition', (event) => {
    const target = pool.get(event.id)!
    seen.push([event.to, target.state, target.effectiveWeight])
  })
  ups[0].mode = 'error'
  await until(() => seen.length >= 1, 5000, 'unhealthy')
  ups[0].mode = 'ok'
  await until(() => seen.length >= 2, 5000, 'healthy again')
  t.same(seen, [['unhealthy', 'unhealthy', 10], ['healthy', 'slow-start', 2]])
  t.equal(pool.get('b')!.effectiveWeight, 10, 'the other target is untouched')
})

test("a pool's first targets take their full weight; later ones ramp", async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const gw = await startGateway({ pools: { main: { algorithm: 'weighted-round-robin', targets: [], slowStart: { window: 60_000 } } } })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const a = pool.add({ url: ups[0].url, id: 'a', weight: 2 })
  t.same([a.effectiveWeight, a.state], [2, 'healthy'], 'nothing to protect it from')
  const b = pool.add({ url: ups[1].url, id: 'b', weight: 2 })
  t.same([b.effectiveWeight, b.state], [0.2, 'slow-start'])
})
