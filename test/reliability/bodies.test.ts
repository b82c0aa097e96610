import { test } from 'tap'
import type { AddressInfo } from 'node:net'
import { startGateway } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { rawRequest } from '../helpers/raw-http'
import { RecordingUpstream } from '../helpers/recorder'

/** Bodies a proxy that parsed and serialised again would change; each must reach the upstream byte for byte. */
const BODIES: Array<{ what: string, type?: string, body: Buffer }> = [
  { what: 'an integer beyond 2^53', type: 'application/json', body: Buffer.from('{"id":12345678901234567891}') },
  { what: 'a long decimal', type: 'application/json', body: Buffer.from('{"amount":0.1000000000000000055511151231257827}') },
  { what: 'duplicate keys', type: 'application/json', body: Buffer.from('{"a":1,"a":2}') },
  { what: 'whitespace a webhook signature covers', type: 'application/json; charset=utf-8', body: Buffer.from('{ "a" :\n\t1 }\r\n') },
  { what: 'JSON false', type: 'application/json', body: Buffer.from('false') },
  { what: 'JSON 0', type: 'application/json', body: Buffer.from('0') },
  { what: 'JSON null', type: 'application/json', body: Buffer.from('null') },
  { what: 'JSON ""', type: 'application/json', body: Buffer.from('""') },
  { what: 'a "__proto__" key', type: 'application/json', body: Buffer.from('{"__proto__":{"admin":true}}') },
  { what: 'invalid UTF-8', type: 'text/plain; charset=utf-8', body: Buffer.from([0x61, 0xff, 0xfe, 0xc3, 0x28, 0x0a]) },
  { what: 'latin1 text', type: 'text/plain; charset=iso-8859-1', body: Buffer.from('caf\u00e9 \u00fcber', 'latin1') },
  { what: 'a type no parser knows', type: 'application/x-protobuf', body: Buffer.from([0x00, 0x01, 0x02, 0xff, 0x0d, 0x0a]) },
  { what: 'no content type at all', body: Buffer.from([0x10, 0x20, 0x00, 0x7f]) }
]

/** Sends one request over a fresh socket exactly as given, the body as raw bytes. */
async function send (port: number, method: string, path: string, type: string | undefined, body: Buffer, extra: string[] = []): Promise<{ status: number, body: string }> {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: gateway.example', ...(type === undefined ? [] : [`Content-Type: ${type}`]), `Content-Length: ${body.length}`, ...extra]
  const res = await rawRequest(port, lines, body.toString('latin1'))
  return { status: res.status, body: res.body }
}

test('request bodies reach the upstream byte for byte, whatever their type, with GET, POST and PUT', async (t) => {
  const up = await new RecordingUpstream('a').start()
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url, id: 'a' }] } } }, (app) => {
    app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
    // Routes without an upstream keep Fastify's parsers.
    app.post('/local', async (request) => ({ type: typeof request.body, body: request.body }))
    // A handler of the gateway's own on a pool's route reshapes requests: it gets the parsed body.
    app.post('/own', { config: { upstream: 'main' } }, async (request) => ({ type: typeof request.body }))
  })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const port = (gw.app.server.address() as AddressInfo).port

  for (const method of ['POST', 'PUT', 'GET']) {
    for (const { what, type, body } of BODIES) {
      const res = await send(port, method, '/hook', type, body)
      t.equal(res.status, 200, `${method} ${what}: answered`)
      const got = up.last
      t.equal(got.method, method)
      t.ok(got.body.equals(body), `${method} ${what}: the same ${body.length} bytes (got ${got.body.toString('hex')})`)
      t.equal(got.headers['content-type'], type, `${method} ${what}: the content type as sent`)
      t.equal(got.headers['content-length'], String(body.length), `${method} ${what}: the content length of those bytes`)
    }
  }

  // A chunked body arrives whole, with its length.
  const chunked = Buffer.from('{"id":12345678901234567891}')
  const res = await rawRequest(port, ['POST /chunked HTTP/1.1', 'Host: gateway.example', 'Content-Type: application/json', 'Transfer-Encoding: chunked'],
    `5\r\n${chunked.subarray(0, 5).toString('latin1')}\r\n${(chunked.length - 5).toString(16)}\r\n${chunked.subarray(5).toString('latin1')}\r\n0\r\n\r\n`)
  t.equal(res.status, 200)
  t.ok(up.last.body.equals(chunked), 'a chunked body reached the upstream whole')
  t.equal(up.last.headers['transfer-encoding'], undefined)
  t.equal(up.last.headers['content-length'], String(chunked.length))

  const local = await send(port, 'POST', '/local', 'application/json', Buffer.from('{"n":1}'))
  t.same(JSON.parse(local.body), { type: 'object', body: { n: 1 } }, 'a route without an upstream gets its body parsed as before')
  const own = await send(port, 'POST', '/own', 'application/json', Buffer.from('{"n":1}'))
  t.same(JSON.parse(own.body), { type: 'object' }, 'so does a handler of the gateway\'s own')
  await assertIdle(t, gw.app.lb.pool('main'), 'after every body')
})

test('a body read whole is sent again as it came when a try is retried', async (t) => {
  const ups = [await new RecordingUpstream('a').start(), await new RecordingUpstream('b').start()]
  ups[0].status = 503
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: ups.map((u) => ({ url: u.url, id: u.id })) } } })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const port = (gw.app.server.address() as AddressInfo).port
  const body = Buffer.from('{"id":12345678901234567891, "id":0.10000000000000000555}')
  for (const method of ['PUT', 'GET']) {
    const before = ups.map((u) => u.received.length)
    // Round robin starts some requests on a, whose 503 is retried on b.
    for (let i = 0; i < 4; i++) {
      const res = await send(port, method, '/retry', 'application/json', body)
      t.equal(res.status, 200, `${method}: answered`)
      t.equal(res.body, 'b', `${method}: by b, after a retry when a was first`)
    }
    t.ok(ups[0].received.length > before[0], `${method}: a was tried, and answered 503`)
    for (const u of ups) {
      for (const got of u.received.slice(before[ups.indexOf(u)])) t.ok(got.body.equals(body), `${method}: ${u.id} got the same bytes`)
    }
  }
  // POST is not retried: the 503 is the answer, and only a saw the body.
  const before = ups[1].received.length
  const tries = await Promise.all([send(port, 'POST', '/once', 'application/json', body), send(port, 'POST', '/once', 'application/json', body)])
  t.same(tries.map((r) => r.status).sort(), [200, 503])
  t.equal(ups[1].received.length, before + 1)
  await assertIdle(t, gw.app.lb.pool('main'), 'after retried bodies')
})

test('a client that breaks off its body reaches no upstream and charges none', async (t) => {
  const up = await new RecordingUpstream('a').start()
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url, id: 'a' }] } } })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const port = (gw.app.server.address() as AddressInfo).port
  const { connect } = await import('node:net')
  await new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('POST /cut HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":')
      setImmediate(() => socket.destroy())
    })
    socket.on('close', () => resolve())
  })
  const after = await send(port, 'POST', '/after', 'application/json', Buffer.from('{}'))
  t.equal(after.status, 200, 'the gateway serves the next request')
  t.equal(up.received.length, 1, 'only the whole request reached the upstream')
  t.equal(gw.app.lb.pool('main').get('a')!.failures, 0)
  await assertIdle(t, gw.app.lb.pool('main'), 'after a broken-off body')
})
