import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, count, startGateway, until } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'

/** Sends `total` GETs, `concurrency` at a time, and returns every status. */
async function burst (client: Client, url: string, total: number, concurrency: number): Promise<number[]> {
  const statuses: number[] = []
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++
      statuses.push((await client.send(url)).status)
    }
  }))
  return statuses
}

test('every upstream down: the retry budget holds, then 503 without trying anyone, then full recovery', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  const gw = await startGateway({
    pools: {
      main: {
        targets: ups.map((u) => ({ url: u.url, id: u.id })),
        healthCheck: { interval: 25, jitter: 0, unhealthyThreshold: 2, healthyThreshold: 2 }
      }
    }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const hits = (): number => ups.reduce((n, u) => n + u.hits, 0)

  await t.test('overloaded: every upstream answers 503', async (t) => {
    for (const u of ups) u.status = 503
    const requests = 600
    const before = hits()
    const statuses = await burst(client, gw.url + '/x', requests, 40)
    t.same(count(statuses.map(String)), { 503: requests }, 'the upstreams\' own 503 reaches every client')
    // Without a budget every request would be tried 3 times (1800 tries). Retries in flight are held to
    // max(3, 20% of requests in flight), so about a quarter of the tries at most are retries.
    const tries = hits() - before
    t.ok(tries >= requests && tries <= requests * 1.5, `${tries} tries for ${requests} requests`)
    await assertIdle(t, pool, 'after the overload')
    for (const u of ups) u.status = null
  })

  await t.test('gone: connections refused', async (t) => {
    for (const u of ups) await u.stop()
    // Until the checks notice, each request tries each target once (refused connections fail over) and gets a 502.
    const early = await client.send(gw.url + '/x')
    t.ok(early.status === 502 || early.status === 503, `before detection: ${early.status}`)
    await until(() => pool.eligible.length === 0, 5000, 'every target unhealthy')
    const sent = pool.targets.reduce((n, x) => n + x.requests, 0)
    const statuses = await burst(client, gw.url + '/x', 300, 30)
    t.same(count(statuses.map(String)), { 503: 300 }, 'answered 503 at once')
    const res = await client.send(gw.url + '/x')
    t.equal(res.headers['retry-after'], '5')
    t.equal(JSON.parse(res.text).code, 'FST_LB_NO_TARGET')
    t.equal(pool.targets.reduce((n, x) => n + x.requests, 0), sent, 'no try was sent to a dead upstream')
    await assertIdle(t, pool, 'during the outage')
  })

  await t.test('back: full recovery', async (t) => {
    for (const u of ups) await u.start()
    await until(() => pool.eligible.length === 3, 5000, 'every target healthy again')
    const before = ups.map((u) => u.hits)
    const statuses = await burst(client, gw.url + '/x', 300, 30)
    t.same(count(statuses.map(String)), { 200: 300 })
    t.ok(ups.every((u, i) => u.hits - before[i] >= 50), `every upstream takes its share: ${ups.map((u, i) => u.hits - before[i]).join(', ')}`)
    await assertIdle(t, pool, 'after recovery')
  })
})
