import { test } from 'tap'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import type { AddressInfo } from 'node:net'
import lb from '../../lib/index'
import { assertIdle } from '../helpers/leaks'
import { closedWs, connectWs, WsUpstream } from '../helpers/ws-upstream'

for (const order of ['@fastify/websocket first', 'fastify-lb first']) {
  test(`beside @fastify/websocket (${order}): its routes keep their upgrades, the plugin's routes tunnel theirs`, async (t) => {
    const up = await new WsUpstream('up').start()
    const app = Fastify()
    const options = { pools: { main: { targets: [up.url] } } }
    if (order === 'fastify-lb first') {
      await app.register(lb, options)
      await app.register(websocket)
    } else {
      await app.register(websocket)
      await app.register(lb, options)
    }
    app.get('/local', { websocket: true }, (socket) => {
      socket.send('hello from local')
      socket.on('message', (data) => socket.send(`local echo ${String(data)}`))
    })
    app.get('/proxied/*', { config: { upstream: 'main' } }, app.lb.forward)
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close(); await up.stop() })
    const base = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}`

    const local = await connectWs(base + '/local')
    t.equal(local.upstream, 'local', '@fastify/websocket serves its own route')
    const proxied = await connectWs(base + '/proxied/chat')
    t.equal(proxied.upstream, 'up', 'the plugin tunnels its route to the pool')
    t.same(up.paths, ['/proxied/chat'])
    const echo = new Promise<string>((resolve) => local.ws.once('message', (d) => resolve(String(d))))
    local.ws.send('x')
    t.equal(await echo, 'local echo x')
    const answer = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/proxied/plain`)
    t.equal(await answer.text(), 'up GET /proxied/plain', 'plain requests on the route are proxied as before')
    local.ws.close()
    proxied.ws.close()
    await Promise.all([closedWs(local.ws), closedWs(proxied.ws)])
    await assertIdle(t, app.lb.pool('main'), 'after both sockets closed')
  })
}
