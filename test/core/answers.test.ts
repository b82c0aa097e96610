import { test } from 'tap'
import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { FaultServer } from '../helpers/fault-server'
import { Client, refusedUrl, startGateway, until } from '../helpers/gateway'
import { rawRequest } from '../helpers/raw-http'

/** 200,000 bytes: above the 64 KiB the gateway reads whole, so it streams. */
const LARGE = Buffer.alloc(200_000, 'abcdefghijklmnopqrstuvwxyz')

interface Upstream {
  url: string
  server: Server
  /** Requests whose connection closed before their answer was finished. */
  cancelled: number
  stop: () => Promise<void>
}

function answer (req: IncomingMessage, res: ServerResponse, upstream: Upstream): void {
  switch (req.url) {
    case '/small':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5', 'x-up': 'yes', 'set-cookie': 'up=1; Path=/' })
      res.end('hello')
      return
    case '/large':
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(LARGE.length) })
      res.end(LARGE)
      return
    case '/chunked':
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('one,')
      setImmediate(() => { res.write('two,'); setImmediate(() => res.end('three')) })
      return
    case '/pieces': {
      // 30,000 bytes in three writes, a turn of the event loop apart: read whole from several chunks.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '30000' })
      res.write('a'.repeat(10_000))
      setTimeout(() => { res.write('b'.repeat(10_000)); setTimeout(() => res.end('c'.repeat(10_000)), 5) }, 5)
      return
    }
    case '/untyped':
      res.writeHead(200, { 'content-length': '5' })
      res.end('plain')
      return
    case '/empty':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '0' })
      res.end()
      return
    case '/no-content':
      res.writeHead(204, { 'x-up': 'yes' })
      res.end()
      return
    case '/not-modified':
      res.writeHead(304, { etag: '"v1"' })
      res.end()
      return
    case '/not-modified-length':
      // RFC 9110 lets a 304 carry the length of the body it stands for; no body follows.
      res.writeHead(304, { etag: '"v1"', 'content-length': '100' })
      res.end()
      return
    case '/hop':
    case '/hop-large': {
      // Hop-by-hop headers, one of them named in Connection, beside end-to-end ones (one sent twice).
      const body = req.url === '/hop' ? Buffer.from('hop') : LARGE
      res.setHeader('connection', 'keep-alive, x-hop')
      res.setHeader('keep-alive', 'timeout=5')
      res.setHeader('proxy-connection', 'keep-alive')
      res.setHeader('x-hop', 'one hop only')
      res.setHeader('x-dup', ['a', 'b'])
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) })
      res.end(body)
      return
    }
    case '/hints':
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' })
        res.end('after hints')
      }, 5)
      return
    case '/stall':
      // Ten bytes of a hundred, then nothing: the answer is still being read when the client leaves.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' })
      res.write('0123456789')
      res.on('close', () => { if (!res.writableFinished) upstream.cancelled++ })
      return
    default:
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '9' })
      res.end('not found')
  }
}

async function startUpstream (): Promise<Upstream> {
  const upstream: Upstream = { url: '', server: createServer(), cancelled: 0, stop: async () => {} }
  upstream.server.on('request', (req, res) => answer(req, res, upstream))
  await new Promise<void>((resolve) => upstream.server.listen(0, '127.0.0.1', () => resolve()))
  upstream.url = `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`
  upstream.stop = async () => {
    upstream.server.closeAllConnections()
    await new Promise<void>((resolve) => upstream.server.close(() => resolve()))
  }
  return upstream
}

function sha (data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

test('answers reach the client as the upstream gave them, read whole or streamed', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({ pools: { main: { targets: [up.url] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await up.stop() })
  const pool = gw.app.lb.pool('main')

  const small = await client.send(gw.url + '/small')
  t.equal(small.status, 200)
  t.equal(small.text, 'hello')
  t.equal(small.headers['content-type'], 'text/plain')
  t.equal(small.headers['content-length'], '5')
  t.equal(small.headers['x-up'], 'yes')
  t.equal(small.headers['set-cookie'], 'up=1; Path=/', "the upstream's cookie passes")

  const head = await client.send(gw.url + '/small', { method: 'HEAD' })
  t.same([head.status, head.headers['content-length'], head.text], [200, '5', ''], 'HEAD: the length of the GET, no body')

  const large = await request(gw.url + '/large', { dispatcher: client.agent })
  const bytes = Buffer.from(await large.body.arrayBuffer())
  t.equal(large.headers['content-length'], String(LARGE.length), 'a large answer keeps its length')
  t.equal(sha(bytes), sha(LARGE), 'and every byte of it')

  const chunked = await client.send(gw.url + '/chunked')
  t.same([chunked.status, chunked.text, chunked.headers['content-length']], [200, 'one,two,three', undefined], 'an answer of unknown length is streamed')

  const pieces = await client.send(gw.url + '/pieces')
  t.equal(pieces.text, 'a'.repeat(10_000) + 'b'.repeat(10_000) + 'c'.repeat(10_000), 'an answer that came in pieces, whole and in order')

  const untyped = await client.send(gw.url + '/untyped')
  t.same([untyped.text, untyped.headers['content-type']], ['plain', undefined], 'no content type is made up for an answer without one')

  const empty = await client.send(gw.url + '/empty')
  t.same([empty.status, empty.text, empty.headers['content-length']], [200, '', '0'])

  const noContent = await client.send(gw.url + '/no-content')
  t.same([noContent.status, noContent.text, noContent.headers['x-up'], noContent.headers['content-length']], [204, '', 'yes', undefined])

  const notModified = await client.send(gw.url + '/not-modified', { headers: { 'if-none-match': '"v1"' } })
  t.same([notModified.status, notModified.text, notModified.headers.etag], [304, '', '"v1"'])

  // Read raw: undici as a client takes such a 304 for a cut answer too.
  const port = Number(new URL(gw.url).port)
  for (let i = 0; i < 3; i++) {
    const withLength = await rawRequest(port, ['GET /not-modified-length HTTP/1.1', 'Host: x', 'If-None-Match: "v1"'])
    t.same([withLength.status, withLength.body], [304, ''], 'a 304 with a content-length is an answer, not a failure')
  }

  const hinted = await client.send(gw.url + '/hints')
  t.same([hinted.status, hinted.text], [200, 'after hints'], 'an informational 103 is followed by the final answer')

  for (const path of ['/hop', '/hop-large']) {
    const hop = await client.send(gw.url + path)
    t.same({
      status: hop.status,
      dropped: ['proxy-connection', 'x-hop'].filter((h) => hop.headers[h] !== undefined),
      // The gateway's own server says keep-alive to its client, with its own timeout.
      connection: hop.headers.connection,
      upstreamKeepAlive: hop.headers['keep-alive'] === 'timeout=5',
      dup: hop.headers['x-dup']
    }, { status: 200, dropped: [], connection: 'keep-alive', upstreamKeepAlive: false, dup: ['a', 'b'] }, `${path}: hop-by-hop headers stay on the upstream's connection, the others pass`)
  }

  const missing = await client.send(gw.url + '/nothing-here')
  t.same([missing.status, missing.text], [404, 'not found'], "the upstream's own 404 passes as it is")

  t.equal(pool.inFlight, 0, 'nothing left in flight')
  t.equal(pool.get(pool.targets[0].id)!.failures, 0, 'and no answer counted as a failure')
})

test('a client that leaves while an answer is read whole cancels the upstream request', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({ pools: { main: { targets: [up.url] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await up.stop() })
  const pool = gw.app.lb.pool('main')

  const controller = new AbortController()
  const pending = client.send(gw.url + '/stall', { signal: controller.signal })
  await until(() => pool.inFlight === 1, 5000, 'the try under way')
  // The head and ten bytes are in the gateway; the client has seen nothing yet.
  await new Promise((resolve) => setTimeout(resolve, 50))
  controller.abort()
  await t.rejects(pending, 'the client gave up')
  await until(() => up.cancelled === 1, 3000, 'the upstream request to be cut')
  t.equal(pool.inFlight, 0, 'the target is released')
  t.equal((await client.send(gw.url + '/small')).text, 'hello', 'the gateway serves the next request')
})

test('hooks after the proxy run in the async context of their request', async (t) => {
  const up = await startUpstream()
  const refused = await refusedUrl()
  const storage = new AsyncLocalStorage<{ id: string }>()
  const seen: Record<string, string | undefined> = {}
  const gw = await startGateway({
    pools: {
      main: { targets: [up.url] },
      // Round robin starts with the refused target: the first request fails over.
      failover: { algorithm: 'round-robin', targets: [refused, up.url] }
    }
  }, (app) => {
    app.addHook('onRequest', (request, _reply, done) => { storage.run({ id: String(request.headers['x-id']) }, done) })
    app.addHook('onSend', async (request, _reply, payload) => {
      seen[`onSend ${String(request.headers['x-id'])}`] = storage.getStore()?.id
      return payload
    })
    app.addHook('onResponse', async (request) => {
      seen[`onResponse ${String(request.headers['x-id'])}`] = storage.getStore()?.id
    })
    app.get('/failover/*', { config: { upstream: 'failover' } }, app.lb.forward)
    app.get('/*', { config: { upstream: 'main' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await up.stop() })

  // The first request opens the upstream connections; the others reuse them, so a callback running in the
  // context of whoever opened a connection (rather than of its own request) would show.
  await client.send(gw.url + '/small', { headers: { 'x-id': 'opener' } })
  await client.send(gw.url + '/failover/small', { headers: { 'x-id': 'opener' } })
  for (const key of Object.keys(seen)) delete seen[key]
  await client.send(gw.url + '/small', { headers: { 'x-id': 'read-whole' } })
  await client.send(gw.url + '/large', { headers: { 'x-id': 'streamed' } })
  await client.send(gw.url + '/failover/small', { headers: { 'x-id': 'failed-over' } })
  await until(() => Object.keys(seen).length === 6, 3000, 'every hook to run')
  t.same(seen, {
    'onSend read-whole': 'read-whole',
    'onResponse read-whole': 'read-whole',
    'onSend streamed': 'streamed',
    'onResponse streamed': 'streamed',
    'onSend failed-over': 'failed-over',
    'onResponse failed-over': 'failed-over'
  })
})

test('bufferLimit: how large an answer may be to be read whole; 0 streams every answer', async (t) => {
  const fault = await new FaultServer('fault').start()
  const gw = await startGateway({
    pools: {
      streaming: { bufferLimit: 0, targets: [fault.url] },
      roomy: { bufferLimit: 200_000, targets: [fault.url] }
    }
  }, (app) => {
    app.get('/streaming/*', { config: { upstream: 'streaming' } }, app.lb.forward)
    app.get('/roomy/*', { config: { upstream: 'roomy' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await fault.stop() })

  /** The status, or 'cut' when the head came and the body broke off. */
  async function seen (path: string): Promise<number | 'cut'> {
    const res = await request(gw.url + path, { dispatcher: client.agent })
    try {
      await res.body.text()
      return res.statusCode
    } catch {
      return 'cut'
    }
  }

  // 100 of 1,000 announced bytes, then the connection is cut: within the default limit this is a 502.
  fault.mode = 'half-body'
  t.equal(await seen('/streaming/x'), 'cut', 'streamed: the client got the head, then a cut')
  // 100 of 100,000: streamed by default, read whole under a limit of 200,000.
  fault.mode = 'half-large'
  t.equal(await seen('/roomy/x'), 502, 'read whole: the gateway answers for the upstream')
  fault.mode = 'ok'
  t.equal(await seen('/streaming/x'), 200, 'a whole answer passes either way')
  t.same([gw.app.lb.pool('streaming').inFlight, gw.app.lb.pool('roomy').inFlight], [0, 0])
})
