import { test, type Test } from 'tap'
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import lb from '../../lib/index'
import type { LbOptions } from '../../lib/options/resolve'
import { startGateway } from '../helpers/gateway'
import { rawRequest } from '../helpers/raw-http'

/**
 * Header names that are also names of Object.prototype's members, sent as the
 * upstream spells them (one of them twice): they are data like any other name.
 */
const DATA = ['constructor', 'x', 'toString', 'y', 'hasOwnProperty', 'z', '__proto__', 'w', 'valueOf', 'v', 'constructor', 'x2', '__proto__', 'w2']

/** What the gateway's own server writes whatever the upstream said. */
const GATEWAY_OWN = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'])

function answer (req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x')
  const listed = url.pathname.startsWith('/listed') ? ['Connection', 'constructor, toString'] : []
  const body = 'ok'
  // Without a length the answer is streamed (chunked), with one it is read whole: both parse the same head.
  const length = url.pathname.endsWith('-streamed') ? [] : ['Content-Length', String(body.length)]
  // A flat list of names and values: written exactly as given, repeats and spelling included.
  res.writeHead(200, ['Content-Type', 'text/plain', ...length, ...DATA, ...listed])
  res.end(body)
}

/** The answer's header lines as `name: value`, names lowercased, sorted, without the ones the gateway's server owns. */
function dataLines (head: string): string[] {
  return head.split('\r\n').slice(1)
    .map((line) => {
      const colon = line.indexOf(':')
      return `${line.slice(0, colon).toLowerCase()}: ${line.slice(colon + 1).trim()}`
    })
    .filter((line) => !GATEWAY_OWN.has(line.slice(0, line.indexOf(':'))))
    .sort()
}

async function startUpstream (t: Test): Promise<{ url: string, requests: () => number }> {
  let requests = 0
  const server = createServer((req, res) => { requests++; answer(req, res) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests }
}

/** Retries off: a try that failed on these names would show as a 502, not be hidden by a second try. */
function options (upstream: string): LbOptions {
  return { pools: { main: { targets: [upstream], retry: false } } }
}

/** Sends each case through the gateway on port and checks what the client got. */
async function check (t: Test, port: number): Promise<number> {
  // __proto__ is not passed on (see lib/forward/hop-by-hop.ts); every other name is, as often as it was sent.
  const data = ['constructor: x', 'constructor: x2', 'content-type: text/plain', 'hasownproperty: z', 'tostring: y', 'valueof: v']
  // Connection names two of them: those stayed on the upstream's connection.
  const listed = ['content-type: text/plain', 'hasownproperty: z', 'valueof: v']
  const cases: Array<[string, string[]]> = [['/data', data], ['/data-streamed', data], ['/listed', listed], ['/listed-streamed', listed]]
  for (const [path, expected] of cases) {
    const res = await rawRequest(port, [`GET ${path} HTTP/1.1`, 'Host: x'])
    t.same({ status: res.status, body: res.body, headers: dataLines(res.head) }, { status: 200, body: 'ok', headers: expected }, path)
  }
  return cases.length
}

test('upstream header names that are Object.prototype members pass as data and fail nothing', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startGateway(options(upstream.url))
  t.teardown(async () => { await gw.close() })

  const sent = await check(t, Number(new URL(gw.url).port))
  const pool = gw.app.lb.pool('main')
  t.equal(upstream.requests(), sent, 'one try each')
  t.same([pool.targets[0].failures, pool.inFlight], [0, 0], 'the target was charged no failure, and nothing is left in flight')
})

test("the same through the gateway's own reply-from, whose client parsed the headers", async (t) => {
  const upstream = await startUpstream(t)
  const app = Fastify({ logger: false })
  await app.register(replyFrom)
  await app.register(lb, options(upstream.url))
  app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })

  // Copied into Fastify's reply, __proto__ sent twice would make its headers inherit from an array: `0: w`, `1: w2`.
  const sent = await check(t, (app.server.address() as AddressInfo).port)
  t.equal(upstream.requests(), sent, 'one try each')
  t.equal(app.lb.pool('main').targets[0].failures, 0, 'the target was charged no failure')
})
