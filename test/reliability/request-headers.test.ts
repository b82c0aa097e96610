import { test } from 'tap'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startGateway } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { rawRequest } from '../helpers/raw-http'
import { RecordingUpstream } from '../helpers/recorder'

/**
 * Sends a request with `Expect: 100-continue` as curl does for large bodies:
 * the head, then the body only once the gateway said 100 Continue.
 */
async function expectContinue (port: number, body: Buffer): Promise<{ interim: string, status: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    let interim = ''
    socket.setEncoding('latin1')
    socket.on('error', reject)
    socket.on('data', (chunk: string) => {
      text += chunk
      if (interim === '' && text.includes('\r\n\r\n')) {
        interim = text.slice(0, text.indexOf('\r\n'))
        text = text.slice(text.indexOf('\r\n\r\n') + 4)
        if (interim.includes(' 100 ')) socket.write(body)
      }
    })
    socket.on('close', () => resolve({ interim, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(interim.includes(' 100 ') ? text : interim)?.[1] ?? 0) }))
    socket.write(`POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`)
  })
}

test('hop-by-hop request headers are the gateway\'s business: stripped, never a failure of the target', async (t) => {
  const up = await new RecordingUpstream('a').start()
  const gw = await startGateway({
    pools: {
      main: {
        targets: [{ url: up.url, id: 'a' }],
        // Three failures in a row would eject a: no header a client sends may get it there.
        outlierDetection: { consecutiveFailures: 3, maxEjectionPercent: 1 }
      }
    }
  }, undefined, { bodyLimit: 4 * 1024 * 1024 })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const port = (gw.app.server.address() as AddressInfo).port
  const pool = gw.app.lb.pool('main')
  const a = pool.get('a')!

  // What curl sends for a body over 1 MiB: the gateway says 100 Continue itself, the upstream gets the whole body at once.
  const big = Buffer.from(JSON.stringify({ data: 'x'.repeat(2 * 1024 * 1024) }))
  const res = await expectContinue(port, big)
  t.match(res.interim, /^HTTP\/1\.1 100 Continue/, 'the gateway answers 100 Continue')
  t.equal(res.status, 200, 'and then the upstream\'s answer')
  t.ok(up.last.body.equals(big), 'the 2 MiB body reached the upstream whole')
  t.equal(up.last.headers.expect, undefined, 'without the Expect header')

  const cases: Array<[string, string[]]> = [
    ['Upgrade outside a WebSocket route', ['Connection: upgrade', 'Upgrade: foo/2']],
    ['Keep-Alive', ['Connection: keep-alive', 'Keep-Alive: timeout=5, max=100']],
    ['TE', ['TE: gzip']],
    ['Trailer', ['Trailer: x-checksum']],
    ['Proxy-Connection', ['Proxy-Connection: keep-alive']],
    ['a header the Connection header lists', ['Connection: x-hop', 'X-Hop: secret']]
  ]
  for (const [what, headers] of cases) {
    // Three of each: enough to eject a if they were counted against it.
    for (let i = 0; i < 3; i++) {
      const answer = await rawRequest(port, ['GET /h HTTP/1.1', 'Host: gw', 'X-Kept: yes', ...headers])
      t.equal(answer.status, 200, `${what}: answered`)
    }
    const got = up.last.headers
    for (const name of ['upgrade', 'keep-alive', 'te', 'trailer', 'proxy-connection', 'x-hop', 'expect']) {
      t.equal(got[name], undefined, `${what}: no ${name} upstream`)
    }
    t.equal(got['x-kept'], 'yes', `${what}: the other headers pass`)
  }
  const trailers = await rawRequest(port, ['GET /h HTTP/1.1', 'Host: gw', 'TE: trailers'])
  t.equal(trailers.status, 200)
  t.equal(up.last.headers.te, 'trailers', 'TE: trailers, all that TE may say upstream, passes')

  // A WebSocket upgrade the target does not accept: its plain answer is passed on, and the connection closes after it.
  const hits = up.received.length
  for (let i = 0; i < 3; i++) {
    const ws = await rawRequest(port, ['GET /socket HTTP/1.1', 'Host: gw', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='])
    t.equal(ws.status, 200, 'the target answered the upgrade with a plain 200, passed on')
    t.notMatch(ws.body, /127\.0\.0\.1/, 'no upstream address in the answer')
  }
  t.equal(up.received.length, hits + 3, 'each upgrade reached the target once')
  t.equal(up.last.headers.upgrade, 'websocket', 'with its Upgrade header, which a tunnel needs')

  t.equal(a.failures, 0, 'none of it was charged to the target')
  t.equal(a.ejectedUntil, 0, 'which is not ejected')
  t.equal(pool.eligible.length, 1)
  await assertIdle(t, pool, 'after hop-by-hop headers')
})

test('X-Forwarded-For, -Proto and -Host: set by the gateway, a client\'s own kept only from a peer trustProxy trusts', async (t) => {
  const up = await new RecordingUpstream('a').start()
  const pools = { main: { targets: [{ url: up.url, id: 'a' }] } }
  const plain = await startGateway({ pools })
  const trusting = await startGateway({ pools }, undefined, { trustProxy: '127.0.0.1' })
  const off = await startGateway({ pools: { main: { ...pools.main, forwardedHeaders: false } } })
  t.teardown(async () => { await plain.close(); await trusting.close(); await off.close(); await up.stop() })
  const forged = ['X-Forwarded-For: 203.0.113.9', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: shop.example']
  const portOf = (gw: typeof plain): number => (gw.app.server.address() as AddressInfo).port
  const forwarded = (): Array<string | string[] | undefined> => ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'].map((h) => up.last.headers[h])

  await rawRequest(portOf(plain), ['GET /x HTTP/1.1', 'Host: gw.example:8080'])
  t.same(forwarded(), ['127.0.0.1', 'http', 'gw.example:8080'], 'a plain request gets all three')
  await rawRequest(portOf(plain), ['GET /x HTTP/1.1', 'Host: gw.example', ...forged])
  t.same(forwarded(), ['127.0.0.1', 'http', 'gw.example'], 'an untrusted client cannot pose as another address, scheme or host')

  await rawRequest(portOf(trusting), ['GET /x HTTP/1.1', 'Host: gw.example', ...forged])
  t.same(forwarded(), ['203.0.113.9, 127.0.0.1', 'https', 'shop.example'], 'a trusted proxy\'s chain is kept and the peer appended')
  await rawRequest(portOf(trusting), ['GET /x HTTP/1.1', 'Host: gw.example'])
  t.same(forwarded(), ['127.0.0.1', 'http', 'gw.example'])

  await rawRequest(portOf(off), ['GET /x HTTP/1.1', 'Host: gw.example', ...forged])
  t.same(forwarded(), ['203.0.113.9', 'https', 'shop.example'], 'forwardedHeaders: false passes the client\'s headers as they came')
  await rawRequest(portOf(off), ['GET /x HTTP/1.1', 'Host: gw.example'])
  t.same(forwarded(), [undefined, undefined, undefined], 'and sets none')
})
