import { test } from 'tap'
import Fastify from 'fastify'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import lb from '../../lib/index'
import { refusedUrl, startGateway, until } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { rawRequest } from '../helpers/raw-http'
import { closedWs, connectWs, refusedUpgrade, WsUpstream } from '../helpers/ws-upstream'

const wsUrl = (url: string, path: string): string => url.replace('http://', 'ws://') + path

test('an upgrade on a forward route goes to the picked target with the route\'s hooks, and its frames pass both ways', async (t) => {
  const a = await new WsUpstream('a').start()
  const b = await new WsUpstream('b').start()
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: [{ url: a.url, id: 'a' }, { url: b.url + '/base', id: 'b' }] } } }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization !== 'Bearer ok') await reply.code(401).send({ error: 'no' })
    })
    app.all('/ws/*', { config: { upstream: 'main' } }, app.lb.forward)
  })
  t.teardown(async () => { await gw.close(); await a.stop(); await b.stop() })
  const pool = gw.app.lb.pool('main')

  const denied = await refusedUpgrade(wsUrl(gw.url, '/ws/x'))
  t.equal(denied.status, 401, 'a guard that rejects the request rejects the upgrade')
  t.equal(a.upgrades.length + b.upgrades.length, 0, 'which reached no target')

  const auth = { authorization: 'Bearer ok' }
  const first = await connectWs(wsUrl(gw.url, '/ws/chat?room=1'), auth)
  const second = await connectWs(wsUrl(gw.url, '/ws/chat?room=2'), auth)
  t.same([first.upstream, second.upstream], ['a', 'b'], 'round robin, as for requests')
  t.same([a.paths, b.paths], [['/ws/chat?room=1'], ['/base/ws/chat?room=2']], 'path, query and the target\'s base path as for requests')
  const sent = a.upgrades[0]
  t.equal(sent.host, new URL(a.url).host, 'the target\'s Host')
  t.equal(sent['x-forwarded-for'], '127.0.0.1', 'forwarding headers')
  t.equal(sent.upgrade, 'websocket')
  t.match(String(sent.connection), /upgrade/i)
  t.equal(pool.get('a')?.inFlight, 1, 'an open tunnel is in flight on its target')
  t.equal(pool.get('a')?.tunnels, 1)

  const echoed = new Promise<string>((resolve) => first.ws.once('message', (data) => resolve(String(data))))
  first.ws.send('ping')
  t.equal(await echoed, 'ping', 'a frame goes up and comes back')
  first.ws.close()
  second.ws.close()
  await Promise.all([closedWs(first.ws), closedWs(second.ws)])
  await assertIdle(t, pool, 'after the sockets closed')
  t.same(pool.targets.map((x) => x.tunnels), [0, 0])
})

test('a refused connection fails over; every target refusing gives 502 without an address; a target\'s own refusal passes on', async (t) => {
  const up = await new WsUpstream('up').start()
  const refused = await refusedUrl()
  const refused2 = await refusedUrl()
  const gw = await startGateway({
    pools: {
      main: { algorithm: 'round-robin', targets: [{ url: refused, id: 'dead' }, { url: up.url, id: 'up' }] },
      gone: { targets: [{ url: refused, id: 'x' }, { url: refused2, id: 'y' }] }
    }
  }, (app) => {
    app.get('/main', { config: { upstream: 'main' } }, app.lb.forward)
    app.get('/gone', { config: { upstream: 'gone' } }, app.lb.forward)
  })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const main = gw.app.lb.pool('main')

  const { ws, upstream } = await connectWs(wsUrl(gw.url, '/main'))
  t.equal(upstream, 'up', 'the upgrade picked the refusing target first and failed over')
  t.equal(main.get('dead')?.failures, 1, 'the refusal is the target\'s failure')
  t.equal(main.get('dead')?.inFlight, 0, 'and its slot was freed')
  ws.close()
  await closedWs(ws)

  const none = await refusedUpgrade(wsUrl(gw.url, '/gone'))
  t.equal(none.status, 502)
  t.equal((JSON.parse(none.body) as { code: string }).code, 'FST_LB_BAD_GATEWAY')
  t.notMatch(none.body, /127\.0\.0\.1|ECONNREFUSED/, 'no address or error code of a target')

  up.refuse = 403
  const forbidden = await refusedUpgrade(wsUrl(gw.url, '/main'))
  t.equal(forbidden.status, 403, 'the target\'s 403 is the client\'s')
  t.equal(forbidden.body, 'refused')
  t.equal(forbidden.headers['x-served-by'], 'up')
  await assertIdle(t, main, 'after refusals')
  await assertIdle(t, gw.app.lb.pool('gone'), 'after refusals')

  const metrics = await (await fetch(gw.url + '/metrics')).text()
  t.match(metrics, /lb_websocket_total\{pool="main",target="up",result="upgraded"\} 1/)
  t.match(metrics, /lb_websocket_total\{pool="main",target="up",result="rejected"\} 1/)
  // Round robin picked the refusing target first for both upgrades to /main; each failed over to up.
  t.match(metrics, /lb_websocket_total\{pool="main",target="dead",result="failed"\} 2/)
  t.match(metrics, /lb_websocket_connections\{pool="main",target="up"\} 0/)
})

test('upgrades a forward route does not own stay with the server\'s other upgrade listener, and a plain request still gets its answer', async (t) => {
  const up = await new WsUpstream('up').start()
  const app = Fastify()
  await app.register(lb, { pools: { main: { targets: [up.url] } } })
  app.get('/proxied/*', { config: { upstream: 'main' } }, app.lb.forward)
  app.get('/local', async () => 'local')
  // A WebSocket server of the gateway's own, as @fastify/websocket or a ws server would add it.
  const theirs: string[] = []
  app.server.on('upgrade', (req, socket) => {
    theirs.push(req.url ?? '')
    socket.end('HTTP/1.1 418 Mine\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close(); await up.stop() })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const { ws, upstream } = await connectWs(wsUrl(url, '/proxied/a'))
  t.equal(upstream, 'up', 'the plugin\'s route tunnels')
  ws.close()
  const other = await refusedUpgrade(wsUrl(url, '/elsewhere'))
  t.equal(other.status, 418, 'an upgrade on another path reaches the other listener')
  t.same(theirs, ['/elsewhere'], 'and only that one')
  t.equal(await (await fetch(url + '/local')).text(), 'local')
  await closedWs(ws)
})

test('without other upgrade listeners, a non-WebSocket upgrade is a plain request and a WebSocket one on a local route gets that route\'s answer', async (t) => {
  const up = await new WsUpstream('up').start()
  const gw = await startGateway({ pools: { main: { targets: [up.url] } } }, (app) => {
    app.all('/p', { config: { upstream: 'main' } }, app.lb.forward)
    app.get('/local', async () => 'local')
  })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const port = Number(new URL(gw.url).port)
  const h2c = await rawRequest(port, ['POST /p HTTP/1.1', 'Host: gw', 'Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA', 'Content-Length: 11'], 'body intact')
  t.equal(h2c.status, 200, 'h2c is not offered: the request is answered over HTTP/1.1')
  t.equal(h2c.body, 'up POST /p body intact', 'with its body')
  const local = await refusedUpgrade(wsUrl(gw.url, '/local'))
  t.equal(local.status, 200)
  t.equal(local.body, 'local')

  // Keep-alive goes on after such an upgrade: the next request on the same connection is answered too.
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /local HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n' +
    'GET /p HTTP/1.1\r\nHost: gw\r\n\r\n')
  let text = ''
  socket.setEncoding('latin1')
  await new Promise<void>((resolve) => socket.on('data', (chunk: string) => {
    text += chunk
    if (text.includes('up GET /p')) resolve()
  }))
  socket.destroy()
  t.match(text, /^HTTP\/1\.1 200 [\s\S]*local[\s\S]*HTTP\/1\.1 200 [\s\S]*up GET \/p$/, 'both answers on one connection')
  await assertIdle(t, gw.app.lb.pool('main'), 'after plain requests over upgrade connections')
})

test('the affinity cookie set on a polling answer pins the upgrade, and the 101 carries the cookie of a new pin', async (t) => {
  const ups = await Promise.all(['a', 'b', 'c'].map(async (n) => await new WsUpstream(n).start()))
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', affinity: { secret: 'x'.repeat(32) }, targets: ups.map((u) => ({ url: u.url, id: u.name })) } }
  })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })

  const poll = await fetch(gw.url + '/poll')
  const cookie = (poll.headers.get('set-cookie') ?? '').split(';')[0]
  const pinned = (await poll.text()).split(' ')[0]
  t.match(cookie, /^lb_main=/, 'the polling answer set the cookie')
  for (let i = 0; i < 4; i++) {
    const { ws, upstream } = await connectWs(wsUrl(gw.url, '/socket'), { cookie })
    t.equal(upstream, pinned, `upgrade ${i + 1} reaches the pinned target`)
    ws.close()
    await closedWs(ws)
  }

  // An upgrade without a cookie is given one in the 101, for the requests that follow.
  const { WebSocket } = await import('ws')
  const fresh = new WebSocket(wsUrl(gw.url, '/socket'))
  const [setCookie, upstream] = await Promise.all([
    new Promise<string>((resolve) => fresh.once('upgrade', (res) => resolve(String(res.headers['set-cookie'] ?? '')))),
    new Promise<string>((resolve) => fresh.once('message', (d) => resolve(String(d).replace('hello from ', ''))))
  ])
  t.match(setCookie, /^lb_main=/, 'the 101 carries the affinity cookie')
  const again = await fetch(gw.url + '/poll', { headers: { cookie: setCookie.split(';')[0] } })
  t.equal((await again.text()).split(' ')[0], upstream, 'which pins the next request to the tunnel\'s target')
  fresh.close()
  await closedWs(fresh)
  await until(() => gw.app.lb.pool('main').inFlight === 0, 5000, 'idle')
})
