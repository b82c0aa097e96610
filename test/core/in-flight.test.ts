import { test } from 'tap'
import { createServer } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, startGateway, until } from '../helpers/gateway'

test('in-flight counters return to 0 after clients abort mid-request', async (t) => {
  const ups = await startUpstreams(['slow', 'hang'])
  ups[0].mode = 'slow'
  ups[0].delayMs = 5000
  ups[1].mode = 'hang'
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', timeout: 60_000, targets: ups.map((u) => ({ url: u.url, id: u.id })) } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')

  const controllers = Array.from({ length: 20 }, () => new AbortController())
  const pending = Promise.allSettled(controllers.map(async (controller) => client.send(gw.url + '/x', { signal: controller.signal })))
  // Abort only once every request is being handled upstream, so each abort lands mid-request.
  await until(() => ups[0].hits + ups[1].hits === 20, 5000, 'all requests upstream')
  t.equal(pool.inFlight, 20, 'twenty tries in flight')
  for (const controller of controllers) controller.abort()
  const aborted = await pending
  t.equal(aborted.filter((r) => r.status === 'rejected').length, 20, 'every client gave up')
  // The hanging upstream would hold its requests for a minute: the client's
  // disconnect must cancel the upstream request, not wait for the timeout.
  await until(() => pool.inFlight === 0, 3000, 'pool in-flight back to 0')
  t.same(pool.targets.map((x) => x.inFlight), [0, 0])
  // The upstream sees its connections closed: nothing is left waiting there either.
  await until(() => ups[0].active === 0 && ups[1].active === 0, 3000, 'upstream requests cancelled')
})

test('a client that disconnects while the body streams releases the target', async (t) => {
  const ups = await startUpstreams(['a'])
  const gw = await startGateway({ pools: { main: { targets: [{ url: ups[0].url, id: 'a' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  for (let i = 0; i < 10; i++) {
    const res = await client.send(gw.url + '/x')
    t.equal(res.status, 200)
  }
  t.equal(gw.app.lb.pool('main').inFlight, 0)
  t.equal(gw.app.lb.pool('main').get('a')!.requests, 10)
})

test('a client that leaves after sending all of its body (a POST) cancels the upstream request too', async (t) => {
  let cut = 0
  const upstream = createServer((req, res) => {
    req.resume()
    res.on('close', () => { if (!res.writableFinished) cut++ })
    // Answers only after the client has long gone, unless the gateway cuts the request first.
    const timer = setTimeout(() => { res.setHeader('content-type', 'text/plain'); res.end('late') }, 5000)
    res.on('close', () => clearTimeout(timer))
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()))
  const gw = await startGateway({ pools: { main: { retry: false, targets: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`] } } })
  t.teardown(async () => { await gw.close(); upstream.closeAllConnections(); upstream.close() })
  const pool = gw.app.lb.pool('main')

  for (const [method, body] of [['GET', ''], ['POST', '{"order":1}']]) {
    const before = cut
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
    socket.on('error', () => {})
    socket.write(`${method} /x HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
    await until(() => pool.inFlight === 1, 3000, `the ${method} under way`)
    socket.destroy()
    await until(() => cut === before + 1, 3000, `the upstream ${method} to be cut`)
    await until(() => pool.inFlight === 0, 3000, 'the target released')
    t.pass(`${method}: the upstream request was cut as the client left`)
  }
})

test("nothing stays in flight when the gateway's handler timeout answered first", async (t) => {
  // One upstream resets the connection after 300 ms, one sends a small chunked answer after 300 ms.
  const resetter = createNetServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => setTimeout(() => socket.resetAndDestroy(), 300))
  })
  const chunked = createServer((_req, res) => {
    setTimeout(() => { res.setHeader('content-type', 'text/plain'); res.write('hello'); res.end() }, 300)
  })
  await new Promise<void>((resolve) => resetter.listen(0, '127.0.0.1', () => resolve()))
  await new Promise<void>((resolve) => chunked.listen(0, '127.0.0.1', () => resolve()))
  const gw = await startGateway({
    pools: {
      reset: { retry: false, targets: [`http://127.0.0.1:${(resetter.address() as AddressInfo).port}`] },
      chunked: { retry: false, targets: [`http://127.0.0.1:${(chunked.address() as AddressInfo).port}`] }
    }
  }, (app) => {
    app.get('/reset', { config: { upstream: 'reset' } }, app.lb.forward)
    app.get('/chunked', { config: { upstream: 'chunked' } }, app.lb.forward)
  }, { handlerTimeout: 100 })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); resetter.close(); chunked.closeAllConnections(); chunked.close() })

  for (const name of ['reset', 'chunked']) {
    const res = await client.send(`${gw.url}/${name}`)
    t.equal(res.status, 503, `${name}: Fastify's handler timeout answered`)
    const pool = gw.app.lb.pool(name)
    await until(() => pool.inFlight === 0, 3000, `${name}: the try released once the upstream was done`)
    t.equal(pool.targets[0].inFlight, 0)
  }
})
