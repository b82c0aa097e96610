import { test } from 'tap'
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { Server } from 'socket.io'
import { io as connectIo, type Socket } from 'socket.io-client'
import { startGateway, until } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'

/** A socket.io 4 server on port 0 that records which engine.io sessions each of its requests belonged to. */
class IoNode {
  readonly http: HttpServer
  readonly io: Server
  url = ''
  /** Every sid seen in a request to this node (polling and the websocket upgrade). */
  readonly sids = new Set<string>()
  /** Sessions this node handed out (handshakes). */
  readonly sessions = new Set<string>()

  constructor (readonly name: string) {
    this.http = createServer()
    this.http.prependListener('request', (req) => this.note(req.url))
    this.http.prependListener('upgrade', (req) => this.note(req.url))
    this.io = new Server(this.http)
    this.io.engine.on('connection', (socket: { id: string }) => this.sessions.add(socket.id))
    this.io.on('connection', (socket) => {
      socket.emit('node', name)
      socket.on('echo', (value: string, ack: (v: string) => void) => ack(`${name}:${value}`))
    })
  }

  private note (url: string | undefined): void {
    const sid = new URL(url ?? '/', 'http://x').searchParams.get('sid')
    if (sid !== null) this.sids.add(sid)
  }

  async start (): Promise<this> {
    this.http.listen(0, '127.0.0.1')
    await once(this.http, 'listening')
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`
    return this
  }

  async stop (): Promise<void> {
    this.http.closeAllConnections()
    await this.io.close()
  }
}

interface Connected {
  socket: Socket
  node: string
  sid: string
}

/** Resolves once the client's engine.io connection runs over websocket (it starts with long polling). */
async function upgraded (socket: Socket): Promise<void> {
  const engine = socket.io.engine
  if (engine.transport.name === 'websocket') return
  await new Promise<void>((resolve) => engine.once('upgrade', () => resolve()))
}

/** A socket.io client through the gateway that keeps cookies (withCredentials), connected and upgraded to websocket. */
async function connectClient (url: string): Promise<Connected> {
  const socket = connectIo(url, { withCredentials: true, reconnectionDelay: 50, reconnectionDelayMax: 100, forceNew: true })
  const node = await new Promise<string>((resolve, reject) => {
    socket.once('node', resolve)
    socket.once('connect_error', reject)
  })
  await upgraded(socket)
  return { socket, node, sid: socket.io.engine.id }
}

test('socket.io behind the gateway with cookie affinity: each client polls and upgrades on one node, clients spread, and a stopped node\'s clients move', async (t) => {
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map(async (n) => await new IoNode(n).start()))
  const gw = await startGateway({
    pools: {
      io: { algorithm: 'round-robin', affinity: { secret: 's'.repeat(32) }, targets: nodes.map((n) => ({ url: n.url, id: n.name })) }
    }
  }, (app) => {
    app.all('/socket.io/*', { config: { upstream: 'io' } }, app.lb.forward)
  })
  const clients: Connected[] = []
  t.teardown(async () => {
    for (const c of clients) c.socket.disconnect()
    await gw.close()
    for (const n of nodes) await n.stop()
  })

  for (let i = 0; i < 20; i++) clients.push(await connectClient(gw.url))
  t.equal(clients.filter((c) => c.socket.io.engine.transport.name === 'websocket').length, 20, 'every client upgraded to websocket')
  const talkedTo = clients.map((c) => nodes.filter((n) => n.sids.has(c.sid)).map((n) => n.name))
  t.same(talkedTo, clients.map((c) => [c.node]), 'every client\'s polling requests and websocket reached exactly the node of its session')
  const counts = nodes.map((n) => clients.filter((c) => c.node === n.name).length)
  t.same(counts, [7, 7, 6], 'round robin spread the 20 sessions over the three nodes')
  const pool = gw.app.lb.pool('io')
  t.same(pool.targets.map((x) => x.tunnels), counts, 'each node holds its clients\' websockets as open tunnels')

  const echoed = await Promise.all(clients.map(async (c) => await c.socket.timeout(5000).emitWithAck('echo', 'x') as string))
  t.same(echoed, clients.map((c) => `${c.node}:x`), 'every client talks to its node over the tunnel')

  // The node of the first client stops: its clients reconnect, the cookie pins them to a node that is gone, and they get a new pin.
  const stopped = clients[0].node
  const moving = clients.filter((c) => c.node === stopped)
  const moved = moving.map(async (c) => await new Promise<string>((resolve) => c.socket.once('node', resolve)))
  await nodes.find((n) => n.name === stopped)?.stop()
  const newNodes = await Promise.all(moved)
  t.equal(newNodes.length, counts[nodes.findIndex((n) => n.name === stopped)])
  t.ok(newNodes.every((n) => n !== stopped), 'every client of the stopped node reconnected to another node')
  for (const c of moving) await upgraded(c.socket)
  const again = await Promise.all(moving.map(async (c) => await c.socket.timeout(5000).emitWithAck('echo', 'y') as string))
  t.same(again, newNodes.map((n) => `${n}:y`), 'and talks to its new node over a websocket')
  const movedSids = moving.map((c) => c.socket.io.engine.id)
  t.same(movedSids.map((sid) => nodes.filter((n) => n.sids.has(sid)).length), movedSids.map(() => 1), 'each new session stays on one node')

  for (const c of clients) c.socket.disconnect()
  await until(() => pool.targets.every((x) => x.tunnels === 0), 5000, 'tunnels closed')
  await assertIdle(t, pool, 'after the clients left')
})
