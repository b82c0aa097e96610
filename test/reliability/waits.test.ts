import { test, type Test } from 'tap'
import { createServer as createHttpServer, type ServerResponse } from 'node:http'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { FaultServer } from '../helpers/fault-server'
import { Client, startGateway, until, type Gateway } from '../helpers/gateway'
import type { PoolOptions } from '../../lib/options/resolve'
import { assertIdle } from '../helpers/leaks'

async function listen (server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return (server.address() as AddressInfo).port
}

/** Closes a server and every connection it holds. */
async function shut (server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/**
 * A gateway with one connection per origin, held by a request of the pool `hog` (its upstream never answers,
 * its timeout is long), and the pool `main` whose tries to the same origin must wait for that connection.
 */
async function heldConnection (t: Test, main: (holeUrl: string) => PoolOptions): Promise<{ gw: Gateway, hole: FaultServer, client: Client }> {
  const hole = await new FaultServer('hole', 'silent').start()
  const gw = await startGateway({ connections: 1, pools: { hog: { targets: [hole.url], timeout: 60_000 }, main: main(hole.url) } }, (app) => {
    app.all('/hog', { config: { upstream: 'hog' } }, app.lb.forward)
    app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  })
  const client = new Client()
  const leaving = new AbortController()
  t.teardown(async () => { leaving.abort(); await client.close(); await gw.close(); await hole.stop() })
  client.send(gw.url + '/hog', { signal: leaving.signal }).catch(() => {})
  await until(() => hole.requests === 1, 5000, 'the hog\'s request at the upstream')
  return { gw, hole, client }
}

test('the timeout covers the wait for a connection: a request that cannot get one is answered, and was never sent', async (t) => {
  // main's one target is the hog's: both pools queue for the one connection to it.
  const { gw, hole, client } = await heldConnection(t, (url) => ({ targets: [{ url, id: 'hole' }], timeout: 500, retry: false }))
  const answers = await Promise.all(Array.from({ length: 10 }, async () => client.send(gw.url + '/x', { signal: AbortSignal.timeout(20_000) })))
  // Before, they waited in the HTTP client's queue until the hog's request ended, a minute later.
  t.same(answers.map((a) => a.status), Array(10).fill(504), 'every request gets its 504')
  for (const a of answers) t.equal((JSON.parse(a.text) as { code: string }).code, 'FST_LB_GATEWAY_TIMEOUT')
  t.equal(hole.requests, 1, 'none of them was sent')
  t.equal(gw.app.lb.pool('main').get('hole')!.failures, 0, 'nor charged to the target: it never saw them')
  await assertIdle(t, gw.app.lb.pool('main'), 'after queued timeouts')
})

test('a try that timed out waiting for a connection fails over like a refused one, whatever the method', async (t) => {
  const fine = await new FaultServer('fine', 'ok').start()
  t.teardown(async () => { await fine.stop() })
  const { gw, hole, client } = await heldConnection(t, (url) => ({
    algorithm: 'round-robin', targets: [{ url: fine.url, id: 'fine' }, { url, id: 'hole' }], timeout: 500, retry: { attempts: 0 }
  }))
  // POST is never retried once sent; a try that never left the gateway goes elsewhere, free of budget and attempts.
  const answers = await Promise.all(Array.from({ length: 4 }, async () => client.send(gw.url + '/x', { method: 'POST', body: 'x' })))
  t.same(answers.map((a) => a.status), [200, 200, 200, 200])
  t.same(answers.map((a) => a.servedBy), ['fine', 'fine', 'fine', 'fine'])
  t.equal(hole.requests, 1, 'the tries that waited for the hole\'s connection were never sent')
  t.equal(gw.app.lb.pool('main').retries.attempted, 2, 'two of them failed over')
  await assertIdle(t, gw.app.lb.pool('main'), 'after failing over from the queue')
})

test('informational answers do not extend the timeout', async (t) => {
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  // Sends 102 Processing every 100 ms, and never a final answer.
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('data', () => {
      const timer = setInterval(() => socket.write('HTTP/1.1 102 Processing\r\n\r\n'), 100)
      timers.add(timer)
      socket.once('close', () => { clearInterval(timer); timers.delete(timer); sockets.delete(socket) })
    })
  })
  const port = await listen(server)
  const gw = await startGateway({ pools: { main: { targets: [{ url: `http://127.0.0.1:${port}`, id: 'chatty' }], timeout: 600, retry: false } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const timer of timers) clearInterval(timer); await shut(server, sockets) })
  // Before, each 102 restarted the wait: the client waited for good (the signal ends the test instead).
  const res = await client.send(gw.url + '/x', { signal: AbortSignal.timeout(15_000) })
  t.equal(res.status, 504)
  t.equal(gw.app.lb.pool('main').get('chatty')!.failures, 1, 'an upstream that never answers is charged a timeout')
  await assertIdle(t, gw.app.lb.pool('main'), 'after 1xx answers')
})

test('an unsolicited 100 Continue before the final answer is skipped, as RFC 9110 has a client do', async (t) => {
  const sockets = new Set<Socket>()
  let heads = 0
  // Answers every request (several on one connection) with 100 Continue, then 103 Early Hints, then the answer.
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let text = ''
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1')
      for (let end = text.indexOf('\r\n\r\n'); end !== -1; end = text.indexOf('\r\n\r\n')) {
        const head = text.slice(0, end)
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0)
        if (text.length < end + 4 + length) return
        text = text.slice(end + 4 + length)
        heads++
        socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n')
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok')
      }
    })
  })
  const port = await listen(server)
  const gw = await startGateway({ pools: { main: { targets: [{ url: `http://127.0.0.1:${port}`, id: 'polite' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await shut(server, sockets) })
  for (const method of ['POST', 'GET', 'POST']) {
    const res = await client.send(gw.url + '/x', { method, body: method === 'POST' ? '{"a":1}' : undefined })
    t.equal(res.status, 200, `${method}: the final answer reaches the client`)
    t.equal(res.text, 'ok')
  }
  t.equal(heads, 3, 'one try each')
  t.equal(gw.app.lb.pool('main').get('polite')!.failures, 0, 'the upstream is not charged for a legal answer')
  await assertIdle(t, gw.app.lb.pool('main'), 'after 100 Continue answers')
})

test('clients that stop reading a streamed answer cannot hold the upstream\'s connections', async (t) => {
  const sockets = new Set<Socket>()
  let streaming = 0
  const chunk = Buffer.alloc(256 * 1024, 'x')
  // /large streams 256 MiB, far more than every socket buffer between it and the client can hold; /small answers at once.
  const upstream = createHttpServer((req, res: ServerResponse) => {
    if (req.url !== '/large') {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': 'up' })
      res.end('small')
      return
    }
    streaming++
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    let left = 1024
    const pump = (): void => {
      while (left > 0 && !res.destroyed) {
        left--
        if (!res.write(chunk)) {
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    res.once('close', () => { streaming-- })
    pump()
  })
  upstream.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)) })
  const port = await listen(upstream)
  const gw = await startGateway({
    connections: 4,
    pools: { main: { targets: [{ url: `http://127.0.0.1:${port}`, id: 'up' }], sendTimeout: 300, timeout: 10_000 } }
  })
  const client = new Client()
  const gwPort = (gw.app.server.address() as AddressInfo).port
  const readers: Socket[] = []
  t.teardown(async () => {
    for (const r of readers) r.destroy()
    await client.close(); await gw.close(); await shut(upstream, sockets)
  })

  // Eight clients, twice the connections to the upstream, ask for the large answer and never read a byte of it.
  for (let i = 0; i < 8; i++) {
    const socket = connect(gwPort, '127.0.0.1', () => {
      socket.write('GET /large HTTP/1.1\r\nHost: gw\r\n\r\n')
      socket.pause()
    })
    socket.on('error', () => {})
    readers.push(socket)
  }
  await new Promise<void>((resolve) => { const check = (): void => { if (streaming > 0) resolve(); else setTimeout(check, 10) }; check() })
  // Before, the stalled streams kept all four connections: this request waited in the queue for good.
  const res = await client.send(gw.url + '/small', { signal: AbortSignal.timeout(20_000) })
  t.equal(res.status, 200, 'another client is served')
  t.equal(res.text, 'small')
  const target = gw.app.lb.pool('main').get('up')!
  // A paused socket does not read the close; the gateway's side tells.
  await until(() => target.aborted === 8 && target.inFlight === 0, 20_000, 'every stalled client cut')
  t.pass('the gateway cut every client that stopped reading, and freed its upstream connection')
  t.equal(target.failures, 0, 'the target is not charged for clients that stopped reading')
  await assertIdle(t, gw.app.lb.pool('main'), 'after clients that stopped reading')
})
