import { test, type Test } from 'tap'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import type { PoolOptions } from '../../lib/options/resolve'
import type { Pool } from '../../lib/pool/pool'
import { Client, refusedUrl, startGateway, until, type Gateway } from '../helpers/gateway'
import { assertIdle, assertNoLeak, resources } from '../helpers/leaks'
import { byLabel } from '../helpers/prom-text'

interface Setup {
  gw: Gateway
  pool: Pool
  client: Client
  /** Closes the client and the gateway (once); the upstreams stop when the test ends. */
  close: () => Promise<void>
}

/** A real gateway with the pool `main` (round robin over `ups`, in id order) and a client; everything stops when the test ends. */
async function setup (t: Test, ups: DemoUpstream[], options: PoolOptions): Promise<Setup> {
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: ups.map((u) => ({ url: u.url, id: u.id })), ...options } } })
  const client = new Client()
  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    closing ??= (async () => { await client.close(); await gw.close() })()
    await closing
  }
  t.teardown(async () => { await close(); for (const u of ups) await u.stop() })
  return { gw, pool: gw.app.lb.pool('main'), client, close }
}

async function retryCounts (client: Client, gw: Gateway): Promise<Record<string, number>> {
  return byLabel((await client.send(gw.url + '/metrics')).text, 'lb_retries_total', 'result', { pool: 'main' })
}

test('the deadline cuts the try running when it passes: 504 without a third try, the cut try not charged to its target', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  ups[0].mode = 'slow'
  ups[0].status = 503
  ups[1].mode = 'hang'
  ups[2].mode = 'hang'
  // Two tries cannot fit: the first takes 200 ms and the second would wait for the 30 s try timeout.
  const before = resources()
  const { gw, pool, client, close } = await setup(t, ups, { retry: { attempts: 2, deadline: 1000, backoff: false } })
  const retries: string[] = []
  pool.on('retry', (target, reason, wait) => { retries.push(`${target.id} ${String(reason)} ${wait}`) })
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 504)
  t.same(JSON.parse(res.text), { statusCode: 504, code: 'FST_LB_GATEWAY_TIMEOUT', error: 'Gateway Timeout', message: 'Upstream of pool "main" timed out' })
  for (const u of ups) t.notOk(res.text.includes(String(u.port)), 'no upstream address in the answer')
  t.same(retries, ['b 503 0'], 'one retry, to b, at once')
  t.same(ups.map((u) => u.hits), [1, 1, 0], 'the try on b was cut and no third try was made')
  await until(() => ups[1].active === 0, 5000, 'the cut try to close its upstream request')
  const b = pool.get('b')!
  t.same({ failures: b.failures, aborted: b.aborted }, { failures: 0, aborted: 1 }, 'the cut try counts as aborted, not as a failure of b')
  t.same(await retryCounts(client, gw), { attempted: 1, succeeded: 0, budget_exhausted: 0, limit_exceeded: 0, deadline_exceeded: 1 })
  await assertIdle(t, pool, 'after the deadline')
  await close()
  await assertNoLeak(t, before, 'app.close() after the deadline')
})

test('the deadline cuts the first try too, and each request has a deadline of its own', async (t) => {
  const ups = await startUpstreams(['a'])
  ups[0].mode = 'hang'
  const { gw, pool, client } = await setup(t, ups, { retry: { deadline: 300 } })
  const answers = await Promise.all([1, 2, 3].map(async () => (await client.send(gw.url + '/x')).status))
  t.same(answers, [504, 504, 504])
  t.equal(pool.retries.deadline_exceeded, 3)
  await assertIdle(t, pool, 'after three cut requests')
  ups[0].mode = 'ok'
  t.equal((await client.send(gw.url + '/x')).status, 200, 'an answer within the deadline passes')
  t.equal(pool.retries.deadline_exceeded, 3)
})

test('a retry whose back-off would end after the deadline is refused: the answer in hand reaches the client', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].status = 503
  const { gw, pool, client } = await setup(t, ups, { retry: { deadline: 2000, backoff: { base: 5000, max: 5000 } } })
  pool.random = () => 1
  const res = await client.send(gw.url + '/x')
  t.same([res.status, res.servedBy], [503, 'a'], "a's 503 is passed on rather than a 504 later")
  t.same(ups.map((u) => u.hits), [1, 0])
  t.same(await retryCounts(client, gw), { attempted: 0, succeeded: 0, budget_exhausted: 0, limit_exceeded: 0, deadline_exceeded: 1 })
  await assertIdle(t, pool, 'after the refusal')
})

test('a retried request waits its back-off before the next try is sent', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  ups[0].status = 503
  ups[1].status = 503
  const { gw, pool, client } = await setup(t, ups, { retry: { attempts: 2, backoff: { base: 40, max: 1000 } } })
  const seen: Array<{ to: string, wait: number, inFlight: number, hits: number }> = []
  pool.on('retry', (target, _reason, wait) => {
    // Whatever the retry sends at once is in flight before this microtask runs.
    queueMicrotask(() => { seen.push({ to: target.id, wait, inFlight: pool.inFlight, hits: ups.find((u) => u.id === target.id)!.hits }) })
  })
  pool.random = () => 0.5
  const res = await client.send(gw.url + '/x')
  t.same([res.status, res.servedBy], [200, 'c'])
  t.same(seen, [
    { to: 'b', wait: 20, inFlight: 0, hits: 0 },
    { to: 'c', wait: 60, inFlight: 0, hits: 0 }
  ], 'each retry waited (0.5 × 40 ms, then 0.5 × 120 ms) with nothing in flight before it was sent')
  t.same(ups.map((u) => u.hits), [1, 1, 1])

  seen.length = 0
  pool.random = () => 0
  const again = await client.send(gw.url + '/x')
  t.same([again.status, again.servedBy], [200, 'c'])
  t.same(seen.map((s) => [s.to, s.wait, s.inFlight]), [['b', 0, 1], ['c', 0, 1]], 'a jitter of 0 sends each retry at once')
  t.equal(pool.retries.attempted, 4)
  await assertIdle(t, pool, 'after the retries')
})

test('a request that was never sent (a refused connection) fails over at once, whatever the back-off', async (t) => {
  const up = (await startUpstreams(['ok']))[0]
  const dead = await refusedUrl()
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', targets: [{ url: dead, id: 'a-dead' }, { url: up.url, id: 'ok' }], retry: { backoff: { base: 10_000, max: 10_000 } } } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await up.stop() })
  const pool = gw.app.lb.pool('main')
  pool.random = () => 1
  const seen: Array<[string, number, number]> = []
  pool.on('retry', (_target, reason, wait) => { queueMicrotask(() => { seen.push([String(reason), wait, pool.inFlight]) }) })
  const res = await client.send(gw.url + '/x', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
  t.same([res.status, res.servedBy], [200, 'ok'])
  t.same(seen, [['connect', 0, 1]], 'no wait: the failover was in flight at once')
})

test('back-off: false sends retries at once', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].status = 503
  const { gw, pool, client } = await setup(t, ups, { retry: { backoff: false } })
  const seen: number[] = []
  pool.on('retry', (_target, _reason, wait) => { queueMicrotask(() => { seen.push(wait, pool.inFlight) }) })
  pool.random = () => 1
  t.equal((await client.send(gw.url + '/x')).servedBy, 'b')
  t.same(seen, [0, 1])
})

test('a client that leaves during a back-off ends it: no timer, nothing in flight, no retry sent later', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].status = 503
  const { gw, pool, client } = await setup(t, ups, { retry: { deadline: 60_000, backoff: { base: 30_000, max: 30_000 } } })
  pool.random = () => 0.9
  const leaving = new AbortController()
  let waited = -1
  pool.on('retry', (_target, _reason, wait) => {
    waited = wait
    leaving.abort()
  })
  const before = resources()
  await t.rejects(client.send(gw.url + '/x', { signal: leaving.signal }))
  t.equal(waited, 27_000)
  await assertIdle(t, pool, 'after the client left')
  await assertNoLeak(t, before, 'the back-off timer was cleared')
  t.same(ups.map((u) => u.hits), [1, 0], 'b never got the retry')
  t.same(pool.retries, { attempted: 0, succeeded: 0, budget_exhausted: 0, limit_exceeded: 0, deadline_exceeded: 0 })
  pool.random = () => 0
  t.equal((await client.send(gw.url + '/x')).servedBy, 'b', 'the gateway serves on')
})

test('a target that leaves the pool during a back-off is replaced by another', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  ups[0].status = 503
  const { gw, pool, client } = await setup(t, ups, { retry: { backoff: { base: 200, max: 200 } } })
  pool.random = () => 0.5
  pool.on('retry', (target) => { if (target.id === 'b') pool.disable('b') })
  const res = await client.send(gw.url + '/x')
  t.same([res.status, res.servedBy], [200, 'c'])
  t.same(ups.map((u) => u.hits), [1, 0, 1])
  t.equal(pool.retries.attempted, 1)
})

test('with no target left to take it after its back-off, the retry ends in 502', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].status = 503
  const { gw, pool, client } = await setup(t, ups, { retry: { backoff: { base: 200, max: 200 } } })
  pool.random = () => 0.5
  pool.on('retry', () => { pool.disable('b') })
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 502)
  t.equal(JSON.parse(res.text).code, 'FST_LB_BAD_GATEWAY')
  t.same(ups.map((u) => u.hits), [1, 0])
  await assertIdle(t, pool, 'after the retry found nowhere to go')
})

test('a back-off that a stalled event loop carries past the deadline ends in 504, with no try sent', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].status = 503
  const { gw, pool, client } = await setup(t, ups, { retry: { deadline: 300, backoff: { base: 100, max: 100 } } })
  pool.random = () => 0.5
  pool.on('retry', () => {
    // Blocks the loop as a long synchronous task of the gateway's would, so that the back-off and the deadline are both due at once.
    const until = performance.now() + 400
    while (performance.now() < until);
  })
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 504)
  t.equal(JSON.parse(res.text).code, 'FST_LB_GATEWAY_TIMEOUT')
  t.same(ups.map((u) => u.hits), [1, 0])
  t.same({ attempted: pool.retries.attempted, deadline: pool.retries.deadline_exceeded }, { attempted: 0, deadline: 1 })
  await assertIdle(t, pool, 'after the deadline cut the back-off')
})
