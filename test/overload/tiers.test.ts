import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, count, sequence, startGateway, until } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { resolvePoolOptions } from '../../lib/options/resolve'
import { Pool } from '../../lib/pool/pool'
import { pickFor } from '../helpers/pick'

test('backup: c takes nothing while a or b serves, everything when both are down, and gives it back', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  const gw = await startGateway({
    pools: {
      main: {
        algorithm: 'round-robin',
        targets: [{ url: ups[0].url, id: 'a' }, { url: ups[1].url, id: 'b' }, { url: ups[2].url, id: 'c', backup: true }],
        healthCheck: { interval: 20, unhealthyThreshold: 1, healthyThreshold: 1 }
      }
    }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  t.equal(pool.servingTier, 0)
  t.same(count(await sequence(client, gw.url + '/x', 8)), { a: 4, b: 4 }, 'the primaries share everything')

  await ups[0].stop()
  t.same(count(await sequence(client, gw.url + '/x', 6)), { b: 6 }, 'one primary left: still no backup')

  await ups[1].stop()
  // Before the checks notice, refused connections fail over, across tiers, so no client sees an error.
  const during = await sequence(client, gw.url + '/x', 6)
  t.same(count(during), { c: 6 }, 'both primaries down: the backup takes every request')
  await until(() => pool.servingTier === 1, 5000, 'the backup tier to serve')
  t.same(pool.eligible.map((x) => x.id), ['c'])

  await ups[0].start()
  await ups[1].start()
  await until(() => pool.servingTier === 0 && pool.eligible.length === 2, 5000, 'the primaries to be back')
  t.same(count(await sequence(client, gw.url + '/x', 8)), { a: 4, b: 4 }, 'traffic returns to the primaries')
  await assertIdle(t, pool, 'after the tiers changed hands')
})

test('a full primary tier spills over to the backup, request by request', async (t) => {
  const ups = await startUpstreams(['a', 'c'])
  ups[0].mode = 'hold'
  const gw = await startGateway({
    pools: { main: { targets: [{ url: ups[0].url, id: 'a', maxConnections: 1 }, { url: ups[1].url, id: 'c', priority: 1 }] } }
  })
  const client = new Client()
  t.teardown(async () => { ups[0].mode = 'ok'; ups[0].release(); await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const held = client.send(gw.url + '/held')
  await until(() => ups[0].active === 1, 5000, 'a to be full')
  t.same(await sequence(client, gw.url + '/x', 3), ['c', 'c', 'c'], 'the backup takes what the full primary cannot')
  ups[0].release()
  t.equal((await held).servedBy, 'a')
  ups[0].mode = 'ok'
  t.same(await sequence(client, gw.url + '/x', 2), ['a', 'a'], 'and hands it back once a slot frees')
})

/** A pool of primaries p0..p(n-1) and backups b0..b(m-1), with `down` primaries failing their checks. */
function tiered (primaries: number, backups: number, down: number, factor?: number): Pool {
  const targets = [
    ...Array.from({ length: primaries }, (_, i) => ({ url: `http://127.0.0.1:${1000 + i}`, id: `p${i}` })),
    ...Array.from({ length: backups }, (_, i) => ({ url: `http://127.0.0.1:${2000 + i}`, id: `b${i}`, backup: true }))
  ]
  const pool = new Pool(resolvePoolOptions('tiers', { algorithm: 'round-robin', targets, overprovisioningFactor: factor }))
  pool.batch(() => {
    for (let i = 0; i < down; i++) pool.setHealth(pool.get(`p${i}`)!, false, null)
  })
  return pool
}

function tierCounts (pool: Pool, n: number): { primary: number, backup: number } {
  let primary = 0
  for (let i = 0; i < n; i++) if (pickFor(pool, { headers: {}, ip: '' })!.id.startsWith('p')) primary++
  return { primary, backup: n - primary }
}

test('without a factor, a tier takes everything while any of its targets serves (nginx backup)', async (t) => {
  t.same(tierCounts(tiered(4, 2, 0), 1000), { primary: 1000, backup: 0 })
  t.same(tierCounts(tiered(4, 2, 3), 1000), { primary: 1000, backup: 0 }, 'one healthy primary of four still takes it all')
  t.same(tierCounts(tiered(4, 2, 4), 1000), { primary: 0, backup: 1000 })
})

test('with overprovisioningFactor 1.4, a tier at health h keeps min(1, 1.4 h) and the next takes the rest', async (t) => {
  t.same(tierCounts(tiered(4, 2, 0, 1.4), 1000), { primary: 1000, backup: 0 }, 'healthy: 1.4 x 1 caps at everything')
  t.same(tierCounts(tiered(4, 2, 1, 1.4), 1000), { primary: 1000, backup: 0 }, '3 of 4: 1.4 x 0.75 = 1.05, still everything')
  // 2 of 4 healthy: 0.7 of the requests stay; the draws are a golden-ratio sequence, within 1 of the share.
  const half = tierCounts(tiered(4, 2, 2, 1.4), 1000)
  t.ok(Math.abs(half.primary - 700) <= 1, `2 of 4 healthy: ${half.primary} of 1000 to the primaries (700 expected)`)
  const quarter = tierCounts(tiered(4, 2, 3, 1.4), 1000)
  t.ok(Math.abs(quarter.primary - 350) <= 1, `1 of 4 healthy: ${quarter.primary} of 1000 to the primaries (350 expected)`)
})

test('panic over tiers: the healths summed decide, so healthy backups keep a pool out of panic', async (t) => {
  const targets = [
    { url: 'http://127.0.0.1:1000', id: 'p0' }, { url: 'http://127.0.0.1:1001', id: 'p1' },
    { url: 'http://127.0.0.1:2000', id: 'b0', backup: true }
  ]
  const pool = new Pool(resolvePoolOptions('panic', { algorithm: 'round-robin', targets, panicThreshold: 0.5 }))
  pool.batch(() => { pool.setHealth(pool.get('p0')!, false, null); pool.setHealth(pool.get('p1')!, false, null) })
  t.equal(pool.panic, false, 'primaries 0, backups 1: summed health 1')
  t.same(pool.eligible.map((x) => x.id), ['b0'])
  pool.setHealth(pool.get('b0')!, false, null)
  t.equal(pool.panic, true, 'nothing healthy anywhere: panic')
  t.same(pool.eligible.map((x) => x.id), ['p0', 'p1'], 'the first tier with live targets takes the requests, health aside')
})

test('bad tier and limit fields fail naming the target', async (t) => {
  const cases: Array<[object, RegExp]> = [
    [{ backup: true, priority: 2 }, /targets\[0\].priority = 2 \(must not be given with backup: true/],
    [{ priority: 10 }, /targets\[0\].priority = 10 \(must be an integer from 0 to 9\)/],
    [{ backup: 'yes' }, /targets\[0\].backup = "yes" \(must be a boolean\)/],
    [{ maxConnections: -1 }, /targets\[0\].maxConnections = -1 \(must be an integer from 0 to 1000000\)/]
  ]
  for (const [fields, message] of cases) {
    t.throws(() => resolvePoolOptions('p', { targets: [{ url: 'http://127.0.0.1:1', ...fields }] }), { code: 'FST_LB_INVALID_OPTION', message })
  }
  t.throws(() => resolvePoolOptions('p', { overprovisioningFactor: 0.5 }), { message: /overprovisioningFactor = 0.5 \(must be a number from 1 to 100\)/ })
  t.throws(() => resolvePoolOptions('p', { queue: { size: 0 } }), { message: /queue.size = 0 \(must be an integer from 1 to 1000000\)/ })
  t.throws(() => resolvePoolOptions('p', { queue: { size: 1, wait: 5 } }), { message: /queue.wait = 5 \(is not a queue option\)/ })
  t.throws(() => resolvePoolOptions('p', { maxInFlight: 1.5 }), { message: /maxInFlight = 1.5 \(must be an integer from 0 to 1000000\)/ })
})

test('discovery lists change a target\'s limit and tier in place, keeping its state', async (t) => {
  const pool = new Pool(resolvePoolOptions('listed', {
    algorithm: 'round-robin',
    targets: [{ url: 'http://127.0.0.1:1000', id: 'a' }, { url: 'http://127.0.0.1:1001', id: 'b' }]
  }))
  const a = pool.get('a')!
  a.requests = 7
  t.equal(pool.limited, false)
  pool.reconcile([{ url: 'http://127.0.0.1:1000', id: 'a', maxConnections: 1 }, { url: 'http://127.0.0.1:1001', id: 'b', backup: true }])
  t.equal(pool.get('a'), a, 'the same target, its counters kept')
  t.equal(a.requests, 7)
  t.same([a.maxConnections, pool.get('b')!.priority], [1, 1])
  t.equal(pool.limited, true, 'slots are taken at the pick from now on')
  t.same(pool.eligible.map((x) => x.id), ['a'], 'b now waits in the backup tier')
  pool.acquire(a)
  t.equal(a.full, true)
  t.equal(pickFor(pool, { headers: {}, ip: '' })?.id, 'b', 'a full primary spills to the backup')
  pool.release(a)
  t.equal(pickFor(pool, { headers: {}, ip: '' })?.id, 'a', 'and takes it back when its slot frees')
})
