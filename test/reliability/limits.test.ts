import { test } from 'tap'
import type { AddressInfo } from 'node:net'
import { DemoUpstream } from '../helpers/demo-upstream'
import { Client, startGateway } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { rawRequest } from '../helpers/raw-http'

test('oversized bodies and headers: Fastify\'s limits apply, nothing reaches the upstream, the gateway stays up', async (t) => {
  const up = await new DemoUpstream('a').start()
  const bodyLimit = 64 * 1024
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url, id: 'a' }] } } }, undefined, { bodyLimit })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await up.stop() })
  const port = (gw.app.server.address() as AddressInfo).port
  const pool = gw.app.lb.pool('main')

  async function post (type: string, body: string): Promise<{ status: number, code?: string, echoed?: number }> {
    const res = await client.send(gw.url + '/upload', { method: 'POST', body, headers: { 'content-type': type } })
    const parsed = JSON.parse(res.text) as { code?: string, body?: string }
    return res.status === 200 ? { status: 200, echoed: parsed.body?.length } : { status: res.status, code: parsed.code }
  }

  const fits = JSON.stringify({ data: 'x'.repeat(bodyLimit - 100) })
  t.same(await post('application/json', fits), { status: 200, echoed: fits.length }, 'a body within the limit goes through whole')
  // Whatever its type: the gateway passes bytes on and needs no parser for them.
  t.same(await post('application/octet-stream', 'z'.repeat(100)), { status: 200, echoed: 100 })
  const hits = up.hits
  t.same(await post('application/json', JSON.stringify({ data: 'x'.repeat(bodyLimit) })), { status: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
  t.same(await post('text/plain', 'y'.repeat(4 * bodyLimit)), { status: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
  // A content length that lies: more announced than sent, then the client goes away.
  const liar = await rawRequest(port, ['POST /upload HTTP/1.1', 'Host: gw', 'Content-Type: application/json', `Content-Length: ${10 * bodyLimit}`], '{"a":')
  t.equal(liar.status, 413, 'an announced length over the limit is refused before the body is read')
  t.same(await post('application/octet-stream', 'z'.repeat(bodyLimit + 1)), { status: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' })
  t.equal(up.hits, hits, 'no refused body reached the upstream')

  // Headers: one huge header, or very many small ones, beyond Node's 16 KiB.
  const huge = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: gw', `X-Big: ${'h'.repeat(20_000)}`])
  t.equal(huge.status, 431)
  const many = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: gw', ...Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`)])
  t.equal(many.status, 431)
  const longUrl = await rawRequest(port, [`GET /${'u'.repeat(20_000)} HTTP/1.1`, 'Host: gw'])
  t.equal(longUrl.status, 431, 'a request line over the limit too')
  t.equal(up.hits, hits, 'none of them reached the upstream')

  const after = await client.send(gw.url + '/x')
  t.equal(after.status, 200, 'the gateway serves normally afterwards')
  await assertIdle(t, pool, 'after oversized requests')
  t.equal(pool.get('a')!.failures, 0, 'a client\'s oversized request is never held against the upstream')
})

test('binary bodies need no parser: proxied whole, limited by the route\'s bodyLimit, replayable', async (t) => {
  const ups = [await new DemoUpstream('a').start(), await new DemoUpstream('b').start()]
  ups[0].status = 503
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: ups.map((u) => ({ url: u.url, id: u.id })) } } }, (app) => {
    app.all('/*', { config: { upstream: 'main' }, bodyLimit: 4096 }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const payload = 'bytes:' + 'b'.repeat(4000)
  // PUT is idempotent and a buffered body can be sent again: the 503 of the first target is retried on the second.
  const res = await client.send(gw.url + '/blob', { method: 'PUT', body: payload, headers: { 'content-type': 'application/octet-stream' } })
  t.equal(res.status, 200)
  t.equal(res.servedBy, 'b')
  t.equal((JSON.parse(res.text) as { body: string }).body, payload, 'the body reached the second target whole')
  const big = await client.send(gw.url + '/blob', { method: 'PUT', body: 'b'.repeat(5000), headers: { 'content-type': 'application/octet-stream' } })
  t.equal(big.status, 413)
  await assertIdle(t, gw.app.lb.pool('main'), 'after binary bodies')
})
