import { test } from 'tap'
import { createSecureServer, createServer, type Http2SecureServer, type Http2Server, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { makeCertificates } from '../helpers/certs'
import { Client, refusedUrl, startGateway, until } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'

/** A real node:http2 upstream: h2c in the clear, or h2 over TLS (HTTP/1.1 refused either way). */
class H2Upstream {
  readonly server: Http2Server | Http2SecureServer
  url = ''
  /** The HTTP version of every request it got. */
  readonly versions: string[] = []
  held: Http2ServerResponse | null = null

  constructor (readonly name: string, tls?: { cert: Buffer, key: Buffer }) {
    const handler = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
      this.versions.push(req.httpVersion)
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        if (req.url === '/hold') {
          this.held = res
          return
        }
        res.setHeader('x-served-by', name)
        res.end(`${name} ${req.method} ${req.url} ${req.httpVersion} ${Buffer.concat(chunks).toString('utf8')}`)
      })
    }
    this.server = tls === undefined ? createServer(handler) : createSecureServer({ ...tls, allowHTTP1: false }, handler)
  }

  async start (): Promise<this> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    const scheme = 'setSecureContext' in this.server ? 'https' : 'http'
    this.url = `${scheme}://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  async stop (): Promise<void> {
    this.held?.end()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

test('http2: true speaks h2c with prior knowledge to http targets, with failover and in-flight counts as for HTTP/1.1', async (t) => {
  const a = await new H2Upstream('a').start()
  const b = await new H2Upstream('b').start()
  const dead = await refusedUrl()
  const gw = await startGateway({
    pools: { main: { http2: true, algorithm: 'round-robin', targets: [{ url: dead, id: 'dead' }, { url: a.url, id: 'a' }, { url: b.url, id: 'b' }] } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await a.stop(); await b.stop() })
  const pool = gw.app.lb.pool('main')

  const answers = []
  for (let i = 0; i < 6; i++) answers.push(await client.send(gw.url + `/x?i=${i}`))
  t.same(answers.map((r) => r.status), [200, 200, 200, 200, 200, 200])
  // Round robin over dead, a, b: each pick of dead fails over to the next target, which the rotation then passes.
  t.same(answers.map((r) => r.servedBy), ['a', 'b', 'a', 'b', 'a', 'b'], 'the refused target failed over each time it was picked')
  t.match(answers[0].text, /^a GET \/x\?i=0 2\.0 $/, 'the upstream got the request over HTTP/2')
  t.ok([...a.versions, ...b.versions].every((v) => v === '2.0'), 'every request went over HTTP/2')
  t.equal(pool.get('dead')?.failures, 2)

  const post = await client.send(gw.url + '/post', { method: 'POST', body: 'body bytes', headers: { 'content-type': 'text/plain' } })
  t.match(post.text, / POST \/post 2\.0 body bytes$/, 'a body passes over HTTP/2 as it came')

  pool.disable('dead')
  const held = client.send(gw.url + '/hold')
  await until(() => a.held !== null || b.held !== null, 5000, 'the held request upstream')
  t.equal(pool.inFlight, 1, 'a request waiting on an HTTP/2 stream is in flight')
  const holder = (a.held ?? b.held) as Http2ServerResponse
  holder.end('done')
  t.equal((await held).text, 'done')
  await assertIdle(t, pool, 'after HTTP/2 requests')
})

test('http2: true negotiates h2 by ALPN with https targets and verifies their certificates', async (t) => {
  const certs = await makeCertificates(t)
  const up = await new H2Upstream('tls', { cert: certs.server.cert, key: certs.server.key }).start()
  const trusted = await startGateway({ tls: { ca: certs.ca }, pools: { main: { http2: true, targets: [up.url] } } })
  const untrusted = await startGateway({ pools: { main: { http2: true, targets: [up.url] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await trusted.close(); await untrusted.close(); await up.stop() })

  const ok = await client.send(trusted.url + '/secure')
  t.equal(ok.status, 200)
  t.match(ok.text, /^tls GET \/secure 2\.0 $/, 'h2 over TLS')
  const refused = await client.send(untrusted.url + '/secure')
  t.equal(refused.status, 502, 'a certificate the gateway cannot verify is refused')
  t.notMatch(refused.text, /127\.0\.0\.1/)
  t.same(up.versions, ['2.0'], 'and nothing reached the target')
})
