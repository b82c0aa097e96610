import { test } from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { startGateway, until } from '../helpers/gateway'
import { assertIdle, assertNoLeak, resources } from '../helpers/leaks'
import { sampleValue } from '../helpers/prom-text'
import { closedWs, connectWs, refusedUpgrade, WsUpstream } from '../helpers/ws-upstream'

const wsUrl = (url: string, path: string): string => url.replace('http://', 'ws://') + path

test('open sockets are load: in flight, in the metrics and on the status page, and least-connections sends the next one to the target with fewest', async (t) => {
  const ups = await Promise.all(['a', 'b', 'c'].map(async (n) => await new WsUpstream(n).start()))
  const gw = await startGateway({ pools: { main: { algorithm: 'least-connections', targets: ups.map((u) => ({ url: u.url, id: u.name })) } } })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')

  // a and c each hold two sockets, b one: the next socket goes to b, and then all three hold two.
  const held = []
  for (const id of ['a', 'c', 'a', 'c', 'b']) {
    pool.disable('a'); pool.disable('b'); pool.disable('c'); pool.enable(id)
    held.push(await connectWs(wsUrl(gw.url, '/ws')))
  }
  pool.enable('a'); pool.enable('b'); pool.enable('c')
  t.same(held.map((h) => h.upstream), ['a', 'c', 'a', 'c', 'b'])
  const next = await connectWs(wsUrl(gw.url, '/ws'))
  t.equal(next.upstream, 'b', 'least-connections sees the open sockets')
  t.same(pool.targets.map((x) => [x.id, x.inFlight, x.tunnels]), [['a', 2, 2], ['b', 2, 2], ['c', 2, 2]])

  const metrics = await (await fetch(gw.url + '/metrics')).text()
  t.equal(sampleValue(metrics, 'lb_websocket_connections', { pool: 'main', target: 'b' }), 2)
  t.equal(sampleValue(metrics, 'lb_in_flight_requests', { pool: 'main', target: 'b' }), 2)
  t.equal(sampleValue(metrics, 'lb_websocket_total', { pool: 'main', target: 'a', result: 'upgraded' }), 2)
  const status = await (await fetch(gw.url + '/lb/status', { headers: { accept: 'application/json' } })).json() as { pools: Array<{ targets: Array<{ id: string, tunnels: number }> }> }
  t.same(status.pools[0].targets.map((x) => x.tunnels), [2, 2, 2], 'the status page shows open sockets')
  const html = await (await fetch(gw.url + '/lb/status', { headers: { accept: 'text/html' } })).text()
  t.match(html, /\(2 ws\)/)

  for (const h of [...held, next]) h.ws.close()
  await Promise.all([...held, next].map(async (h) => await closedWs(h.ws)))
  await assertIdle(t, pool, 'after the sockets closed')
})

test('drain and remove let open sockets go on until drainTimeout, then close them; a socket that ends first ends the drain', async (t) => {
  const a = await new WsUpstream('a').start()
  const b = await new WsUpstream('b').start()
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', drainTimeout: 300, targets: [{ url: a.url, id: 'a' }, { url: b.url, id: 'b' }] } } })
  t.teardown(async () => { await gw.close(); await a.stop(); await b.stop() })
  const pool = gw.app.lb.pool('main')

  const onA = await connectWs(wsUrl(gw.url, '/ws'))
  const onB = await connectWs(wsUrl(gw.url, '/ws'))
  t.same([onA.upstream, onB.upstream], ['a', 'b'])
  let removed = false
  const removal = pool.remove('a').then(() => { removed = true })
  const echoed = new Promise<string>((resolve) => onA.ws.once('message', (d) => resolve(String(d))))
  onA.ws.send('still here')
  t.equal(await echoed, 'still here', 'a draining target\'s socket still carries frames')
  t.notOk(removed, 'the removal waits for it')
  const third = await connectWs(wsUrl(gw.url, '/ws'))
  t.equal(third.upstream, 'b', 'new sockets go elsewhere')
  const code = await closedWs(onA.ws)
  await removal
  t.equal(code, 1006, 'after drainTimeout the socket was closed (abnormally: the tunnel carries no close frame of its own)')
  t.equal(pool.get('a'), undefined, 'and the target left')
  t.equal(onB.ws.readyState, onB.ws.OPEN, 'the other target\'s socket is untouched')

  // A socket that closes by itself within drainTimeout lets the drain end then.
  const drain = pool.drain('b')
  onB.ws.close()
  third.ws.close()
  await drain
  t.equal(pool.targets.length, 0)
  await assertIdle(t, pool, 'after the drains')
})

test('an idle tunnel is closed after tunnelIdleTimeout; traffic keeps it open', async (t) => {
  const a = await new WsUpstream('a').start()
  const gw = await startGateway({ pools: { main: { tunnelIdleTimeout: 200, targets: [{ url: a.url, id: 'a' }] } } })
  t.teardown(async () => { await gw.close(); await a.stop() })
  const pool = gw.app.lb.pool('main')
  const { ws } = await connectWs(wsUrl(gw.url, '/ws'))
  // Traffic every 50 ms for over twice the idle timeout keeps it open.
  for (let i = 0; i < 10; i++) {
    const back = new Promise<void>((resolve) => ws.once('message', () => resolve()))
    ws.send(String(i))
    await back
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(ws.readyState, ws.OPEN, 'a socket with traffic stays open')
  await closedWs(ws)
  t.pass('once quiet, it was closed')
  await assertIdle(t, pool, 'after the idle close')
  t.equal(a.open, 0, 'the upstream side closed too')
})

test('a client that vanishes closes the upstream side; app.close() ends every tunnel and resolves', async (t) => {
  const a = await new WsUpstream('a').start()
  t.teardown(async () => { await a.stop() })
  const before = resources()
  const gw = await startGateway({ pools: { main: { targets: [{ url: a.url, id: 'a' }] } } })
  const pool = gw.app.lb.pool('main')

  // A raw client that sends the handshake, reads the 101, and then drops its connection without a close frame.
  const port = Number(new URL(gw.url).port)
  const raw = connect(port, '127.0.0.1')
  await once(raw, 'connect')
  raw.write('GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  const [head] = await once(raw, 'data') as [Buffer]
  t.match(head.toString('latin1'), /^HTTP\/1\.1 101 /)
  t.equal(pool.inFlight, 1)
  const upstreamGone = a.allClosed()
  raw.destroy()
  await upstreamGone
  await until(() => pool.inFlight === 0, 5000, 'the slot freed')
  t.same([pool.inFlight, pool.targets[0].tunnels, a.open], [0, 0, 0], 'the upstream socket closed and the counters are back at zero')

  const sockets = await Promise.all([1, 2, 3].map(async () => await connectWs(wsUrl(gw.url, '/ws'))))
  t.equal(pool.targets[0].tunnels, 3)
  await gw.close()
  const codes = await Promise.all(sockets.map(async (s) => await closedWs(s.ws)))
  t.same(codes, [1006, 1006, 1006], 'app.close() ended every tunnel')
  t.same([pool.inFlight, pool.targets[0].tunnels], [0, 0])
  await a.allClosed()
  await assertNoLeak(t, before, 'a closed gateway and its tunnels')
})

test('maxConnections holds for open sockets: a full target takes no more upgrades, a full pool answers 503, and a closed socket frees its slot', async (t) => {
  const a = await new WsUpstream('a').start()
  const b = await new WsUpstream('b').start()
  const gw = await startGateway({ pools: { main: { targets: [{ url: a.url, id: 'a', maxConnections: 1 }, { url: b.url, id: 'b', maxConnections: 1 }] } } })
  t.teardown(async () => { await gw.close(); await a.stop(); await b.stop() })
  const pool = gw.app.lb.pool('main')

  const first = await connectWs(wsUrl(gw.url, '/ws'))
  const second = await connectWs(wsUrl(gw.url, '/ws'))
  t.same([first.upstream, second.upstream].sort(), ['a', 'b'], 'one socket on each target')
  t.same(pool.targets.map((x) => x.full), [true, true])
  const refused = await refusedUpgrade(wsUrl(gw.url, '/ws'))
  t.equal(refused.status, 503)
  t.equal((JSON.parse(refused.body) as { code: string }).code, 'FST_LB_OVERLOADED')
  t.equal(a.upgrades.length + b.upgrades.length, 2, 'the refused upgrade reached no target')

  first.ws.close()
  await closedWs(first.ws)
  await until(() => !pool.get(first.upstream)?.full, 5000, 'the slot freed')
  const third = await connectWs(wsUrl(gw.url, '/ws'))
  t.equal(third.upstream, first.upstream, 'the freed slot takes the next socket')
  second.ws.close()
  third.ws.close()
  await Promise.all([closedWs(second.ws), closedWs(third.ws)])
  await assertIdle(t, pool, 'after limited sockets')
})

test('with a queue, an upgrade that finds every target full waits for a socket to close, and one whose client leaves while queued frees its place', async (t) => {
  const a = await new WsUpstream('a').start()
  const gw = await startGateway({ pools: { main: { queue: { size: 2, timeout: 10_000 }, targets: [{ url: a.url, id: 'a', maxConnections: 1 }] } } })
  t.teardown(async () => { await gw.close(); await a.stop() })
  const pool = gw.app.lb.pool('main')

  const first = await connectWs(wsUrl(gw.url, '/ws'))
  const waiting = connectWs(wsUrl(gw.url, '/ws?queued'))
  await until(() => pool.waiting?.length === 1, 5000, 'the upgrade queued')
  t.equal(a.upgrades.length, 1, 'the queued upgrade has not reached the target')
  first.ws.close()
  const second = await waiting
  t.equal(second.upstream, 'a', 'once the first socket closed, the queued upgrade went through')
  t.same(a.paths, ['/ws', '/ws?queued'])

  // A client that gives up while queued leaves the queue at once.
  const leaving = connect(Number(new URL(gw.url).port), '127.0.0.1')
  await once(leaving, 'connect')
  leaving.write('GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  await until(() => pool.waiting?.length === 1, 5000, 'the second upgrade queued')
  leaving.destroy()
  await until(() => pool.waiting?.length === 0, 5000, 'the queue emptied')
  second.ws.close()
  await closedWs(second.ws)
  await assertIdle(t, pool, 'after queued upgrades')
  t.equal(a.upgrades.length, 2, 'the client that left never reached the target')
})
