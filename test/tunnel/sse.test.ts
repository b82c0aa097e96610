import { test } from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import { startGateway, until } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'

/** An endless server-sent event stream, written one event at a time when the test says so. */
class EventSourceUpstream {
  readonly server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.flushHeaders()
    this.streams.push(res)
    res.once('close', () => { this.closed++ })
  })

  readonly streams: ServerResponse[] = []
  closed = 0
  url = ''

  async start (): Promise<this> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  send (stream: number, data: string): void {
    this.streams[stream].write(`id: ${data}\ndata: ${data}\n\n`)
  }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

test('server-sent events stream without buffering, count in flight while open, and end upstream when the client leaves', async (t) => {
  const up = await new EventSourceUpstream().start()
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url, id: 'a' }] } } })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const pool = gw.app.lb.pool('main')

  const controller = new AbortController()
  const res = await request(gw.url + '/events', { signal: controller.signal })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream')
  await until(() => up.streams.length === 1, 5000, 'the stream to open upstream')
  const chunks = res.body[Symbol.asyncIterator]()
  let text = ''
  for (let i = 1; i <= 5; i++) {
    up.send(0, String(i))
    // Each event reaches the client while the upstream still holds the stream open: nothing waits for an end.
    while (!text.includes(`data: ${i}\n\n`)) {
      const { value } = await chunks.next() as { value: Buffer }
      text += value.toString('utf8')
    }
    t.equal(pool.inFlight, 1, `event ${i} arrived while the stream is open and in flight`)
  }
  t.equal(text, [1, 2, 3, 4, 5].map((i) => `id: ${i}\ndata: ${i}\n\n`).join(''), 'every event as the upstream wrote it')

  controller.abort()
  await until(() => up.closed === 1, 5000, 'the upstream stream to close')
  t.equal(up.closed, 1, 'the client leaving ended the upstream stream')
  await assertIdle(t, pool, 'after the client left')
  t.equal(pool.get('a')?.failures, 0, 'a client leaving is not the target\'s failure')
})
