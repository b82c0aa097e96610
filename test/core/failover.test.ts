import { test, type Test } from 'tap'
import { startUpstreams, DemoUpstream } from '../helpers/demo-upstream'
import { Client, count, refusedUrl, sequence, startGateway, type Answer } from '../helpers/gateway'

/** The gateway's own error answers must name the pool and never an upstream. */
function assertNoLeak (t: Test, res: Answer, addresses: string[]): void {
  for (const address of addresses) {
    const hostPort = address.replace(/^https?:\/\//, '')
    t.notOk(res.text.includes(hostPort), `body does not show ${hostPort}`)
    t.notOk(res.text.includes(hostPort.split(':')[1]), 'body does not show the upstream port')
  }
  t.notOk(/\bat .+:\d+:\d+/.test(res.text), 'body has no stack trace')
}

test('a target that refuses connections is skipped without a client-visible error', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const dead = await refusedUrl()
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', targets: [{ url: ups[0].url, id: 'a' }, { url: dead, id: 'dead' }, { url: ups[1].url, id: 'b' }] } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const served = await sequence(client, gw.url + '/x', 30)
  t.same(Object.keys(count(served)).sort(), ['a', 'b'], 'every request answered by a live upstream')
  // POST too: a refused connection sent nothing, so it is safe to send elsewhere.
  for (let i = 0; i < 6; i++) {
    const res = await client.send(gw.url + '/orders', { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json' } })
    t.equal(res.status, 200)
    t.equal(JSON.parse(res.text).body, '{"n":1}', 'the body reached the upstream intact')
  }
  const pool = gw.app.lb.pool('main')
  t.ok(pool.get('dead')!.failures >= 10, 'the refusing target counted its failures')
  t.equal(pool.inFlight, 0)
})

test('every target refusing: 502 without addresses', async (t) => {
  const dead = [await refusedUrl(), await refusedUrl()]
  const gw = await startGateway({ pools: { main: { targets: dead } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close() })
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 502)
  const body = JSON.parse(res.text)
  t.equal(body.code, 'FST_LB_BAD_GATEWAY')
  t.equal(body.statusCode, 502)
  t.match(body.message, /pool "main"/)
  assertNoLeak(t, res, dead)
  const pool = gw.app.lb.pool('main')
  t.same(pool.targets.map((x) => x.requests), [1, 1], 'each target was tried exactly once')
  t.equal(pool.inFlight, 0)
})

test('no eligible target: 503 with Retry-After', async (t) => {
  const ups = await startUpstreams(['a'])
  const gw = await startGateway({ pools: { main: { targets: [{ url: ups[0].url, id: 'a' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  const pool = gw.app.lb.pool('main')
  pool.disable('a')
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '5')
  const body = JSON.parse(res.text)
  t.same(body, { statusCode: 503, code: 'FST_LB_NO_TARGET', error: 'Service Unavailable', message: 'No target of pool "main" is available' })
  t.equal(ups[0].hits, 0, 'nothing reached the upstream')
  t.equal(pool.noTarget, 1)
})

test('an upstream that never answers: 504 after the per-try timeout', async (t) => {
  const ups = await startUpstreams(['hang'])
  ups[0].mode = 'hang'
  const gw = await startGateway({ pools: { main: { targets: [{ url: ups[0].url, id: 'hang' }], timeout: 200 } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 504)
  const body = JSON.parse(res.text)
  t.equal(body.code, 'FST_LB_GATEWAY_TIMEOUT')
  assertNoLeak(t, res, [ups[0].url])
  t.equal(gw.app.lb.pool('main').inFlight, 0)
})

test('a hanging target is retried elsewhere for GET, and its timeout penalises it', async (t) => {
  const ups = await startUpstreams(['hang', 'ok'])
  ups[0].mode = 'hang'
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', timeout: 150, targets: ups.map((u) => ({ url: u.url, id: u.id })) } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const first = await client.send(gw.url + '/x')
  t.equal(first.status, 200)
  t.equal(first.servedBy, 'ok')
  const pool = gw.app.lb.pool('main')
  t.equal(pool.get('hang')!.failures, 1)
  t.ok(pool.get('hang')!.ewmaMs >= 150, 'the timeout counts as a slow answer')
})

test('upstream 5xx answers pass through when no retry applies', async (t) => {
  const up = await new DemoUpstream('err').start()
  up.mode = 'error'
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url, id: 'err' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await up.stop() })
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 500)
  t.equal(res.servedBy, 'err', 'the upstream answer itself reached the client')
})

test('the path and query reach the upstream unchanged, under the target base path', async (t) => {
  const up = await new DemoUpstream('a').start()
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url + '/api/v1/', id: 'a' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await up.stop() })
  const res = await client.send(gw.url + '/users/42?expand=1&x=%2F')
  t.equal(res.status, 200)
  const seen = JSON.parse(res.text)
  t.equal(seen.url, '/api/v1/users/42?expand=1&x=%2F')
  t.equal(seen.host, up.url.replace('http://', ''), 'the Host header names the upstream, not the gateway')
})
