import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { WebSocket } from 'ws'
import { startGateway } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { closedWs, connectWs, WsUpstream } from '../helpers/ws-upstream'

const wsUrl = (url: string, path: string): string => url.replace('http://', 'ws://') + path

/** Sends each payload in turn and collects what comes back, as it came. */
async function echoAll (ws: WebSocket, payloads: Array<string | Buffer>): Promise<Array<string | Buffer>> {
  const back: Array<string | Buffer> = []
  return await new Promise((resolve, reject) => {
    ws.on('message', (data: Buffer, binary: boolean) => {
      back.push(binary ? data : data.toString('utf8'))
      if (back.length === payloads.length) resolve(back)
    })
    ws.once('close', () => reject(new Error(`closed after ${back.length} of ${payloads.length}`)))
    for (const p of payloads) ws.send(p, { binary: typeof p !== 'string' })
  })
}

test('through a consistent-hash pool keyed on a header: one user\'s sockets reach one upstream, and frames of 1 byte to 1 MiB arrive intact', async (t) => {
  const ups = await Promise.all(['a', 'b', 'c'].map(async (n) => await new WsUpstream(n).start()))
  const gw = await startGateway({
    pools: { main: { algorithm: 'consistent-hash', hashKey: { header: 'x-user' }, targets: ups.map((u) => ({ url: u.url, id: u.name })) } }
  })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })

  const reached = new Map<string, Set<string>>()
  const users = Array.from({ length: 12 }, (_, i) => `user-${i}`)
  for (const user of users) {
    for (let i = 0; i < 3; i++) {
      const { ws, upstream } = await connectWs(wsUrl(gw.url, '/chat'), { 'x-user': user })
      const seen = reached.get(user) ?? new Set()
      seen.add(upstream)
      reached.set(user, seen)
      ws.close()
      await closedWs(ws)
    }
  }
  t.same([...reached.values()].map((s) => s.size), users.map(() => 1), 'every user\'s three sockets reached one upstream')
  t.ok(new Set([...reached.values()].map((s) => [...s][0])).size > 1, 'and users spread over more than one')

  const { ws } = await connectWs(wsUrl(gw.url, '/chat'), { 'x-user': 'big' })
  const sizes = [1, 125, 126, 65_535, 65_536, 1 << 20]
  const payloads: Array<string | Buffer> = []
  for (const size of sizes) {
    payloads.push(randomBytes(size))
    payloads.push('é'.repeat(Math.ceil(size / 2)).slice(0, Math.max(1, Math.floor(size / 2))))
  }
  const back = await echoAll(ws, payloads)
  t.equal(back.length, payloads.length)
  for (let i = 0; i < payloads.length; i++) {
    const sent = payloads[i]
    const got = back[i]
    if (typeof sent === 'string') t.ok(got === sent, `text frame ${i} of ${sent.length} characters came back as sent`)
    else t.ok(Buffer.isBuffer(got) && got.equals(sent), `binary frame ${i} of ${sent.length} bytes came back byte for byte`)
  }
  ws.close()
  await closedWs(ws)
  await assertIdle(t, gw.app.lb.pool('main'), 'after the echoes')
})

test('200 concurrent sockets with 1,000 messages each lose nothing and keep their order', async (t) => {
  const ups = await Promise.all(['a', 'b'].map(async (n) => await new WsUpstream(n).start()))
  const gw = await startGateway({ pools: { main: { algorithm: 'least-connections', targets: ups.map((u) => ({ url: u.url, id: u.name })) } } })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')

  const sockets = await Promise.all(Array.from({ length: 200 }, async () => await connectWs(wsUrl(gw.url, '/load'))))
  t.equal(pool.inFlight, 200, 'every open socket is in flight')
  t.same(pool.targets.map((x) => x.tunnels), [100, 100], 'least-connections spread the open sockets evenly')
  const results = await Promise.all(sockets.map(async ({ ws }, s) => {
    const payloads = Array.from({ length: 1000 }, (_, i) => `${s}:${i}`)
    const back = await echoAll(ws, payloads)
    return back.every((m, i) => m === payloads[i])
  }))
  t.equal(results.filter((ok) => ok).length, 200, 'all 200,000 messages came back, each socket\'s in order')
  for (const { ws } of sockets) ws.close()
  await Promise.all(sockets.map(async ({ ws }) => await closedWs(ws)))
  await assertIdle(t, pool, 'after 200 sockets closed')
  t.same(pool.targets.map((x) => x.tunnels), [0, 0])
})
