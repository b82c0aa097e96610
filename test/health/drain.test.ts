import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, sequence, startGateway, until } from '../helpers/gateway'

test('drain: no new picks, the request in flight finishes, then the target leaves', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  // Held until the test has seen the drain wait for it: however slow the machine, the request is still in flight.
  ups[0].mode = 'hold'
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', targets: ups.map((u) => ({ url: u.url, id: u.id })), healthCheck: { interval: 30 } } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const slow = client.send(gw.url + '/slow')
  await until(() => ups[0].active === 1, 5000, 'the request to reach a')

  let drained = false
  const draining = pool.drain('a').then(() => { drained = true })
  const again = pool.drain('a')
  t.equal(pool.get('a')!.state, 'draining')
  t.same(pool.eligible.map((x) => x.id), ['b'], 'no new picks')
  t.same(await sequence(client, gw.url + '/x', 4), ['b', 'b', 'b', 'b'])
  t.equal(ups[0].active, 1, 'the slow request is still being answered')
  t.equal(drained, false, 'the drain waits for it')

  ups[0].release()
  const res = await slow
  t.equal(res.status, 200)
  t.equal(res.servedBy, 'a', 'the request in flight finished on the draining target')
  await Promise.all([draining, again])
  t.same(pool.targets.map((x) => x.id), ['b'], 'then the target left the pool')
  t.equal(pool.get('a'), undefined)
  t.equal(pool.inFlight, 0)
  t.same([...gw.app.lb.health.monitors()].map((m) => m.id), ['b'], 'and is no longer checked')
})

test('draining an idle target resolves at once', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const gw = await startGateway({ pools: { main: { targets: ups.map((u) => ({ url: u.url, id: u.id })) } } })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  await pool.drain('a')
  t.same(pool.targets.map((x) => x.id), ['b'])
  t.throws(() => pool.drain('a'), { code: 'FST_LB_INVALID_OPTION' }, 'a target that left cannot be drained')
})
