import { test } from 'tap'
import fc from 'fast-check'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { Client, startGateway } from '../helpers/gateway'

/** One upstream answer, as the upstream sends it. */
interface Shape {
  method: 'GET' | 'HEAD'
  status: number
  /** Body length in bytes. */
  length: number
  /** Sent with a content-length, or chunked. */
  declared: boolean
  /** With a content type. */
  typed: boolean
  /** The body is written in this many pieces, a turn of the event loop apart. */
  pieces: number
  /** A header the upstream sends twice. */
  repeated: boolean
}

const NO_BODY = new Set([204, 304])

const shapes: fc.Arbitrary<Shape> = fc.record({
  method: fc.constantFrom('GET', 'HEAD'),
  status: fc.constantFrom(200, 201, 204, 206, 304, 404, 410, 500, 503),
  // Around the 64 KiB read whole, and far below and above it.
  length: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 65_000, max: 66_500 }), fc.integer({ min: 100_000, max: 300_000 })),
  declared: fc.boolean(),
  typed: fc.boolean(),
  pieces: fc.integer({ min: 1, max: 4 }),
  repeated: fc.boolean()
})

function bodyOf (shape: Shape): Buffer {
  const body = Buffer.alloc(NO_BODY.has(shape.status) ? 0 : shape.length)
  for (let i = 0; i < body.length; i++) body[i] = 97 + ((i * 7 + shape.length) % 26)
  return body
}

/** The upstream: the shape comes in the request's header, as JSON. */
function answer (req: IncomingMessage, res: ServerResponse): void {
  const shape = JSON.parse(String(req.headers['x-shape'])) as Shape
  const body = bodyOf(shape)
  if (shape.typed) res.setHeader('content-type', 'text/plain; charset=utf-8')
  if (shape.repeated) res.setHeader('x-repeated', ['one', 'two'])
  res.setHeader('x-shape-length', String(body.length))
  if (shape.declared) res.setHeader('content-length', String(body.length))
  res.writeHead(shape.status)
  if (req.method === 'HEAD' || body.length === 0) {
    res.end()
    return
  }
  const size = Math.ceil(body.length / shape.pieces)
  let at = 0
  const next = (): void => {
    const piece = body.subarray(at, at + size)
    at += size
    if (at >= body.length) res.end(piece)
    else {
      res.write(piece)
      setImmediate(next)
    }
  }
  next()
}

test('any answer an upstream gives reaches the client as it was given: status, headers, every byte', async (t) => {
  const upstream = createServer(answer)
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()))
  // No retries: every status, 5xx included, is the upstream's to pass on.
  const gw = await startGateway({ pools: { main: { retry: false, targets: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); upstream.closeAllConnections(); upstream.close() })
  const pool = gw.app.lb.pool('main')

  let runs = 0
  let errors = 0
  await fc.assert(fc.asyncProperty(shapes, async (shape) => {
    runs++
    if (shape.status >= 500) errors++
    const res = await request(`${gw.url}/any`, { dispatcher: client.agent, method: shape.method, headers: { 'x-shape': JSON.stringify(shape) } })
    const bytes = Buffer.from(await res.body.arrayBuffer())
    const expected = shape.method === 'HEAD' ? Buffer.alloc(0) : bodyOf(shape)
    const failures: string[] = []
    if (res.statusCode !== shape.status) failures.push(`status ${res.statusCode}`)
    if (!bytes.equals(expected)) failures.push(`${bytes.length} bytes instead of ${expected.length}`)
    const type = res.headers['content-type']
    if (shape.typed && type !== 'text/plain; charset=utf-8') failures.push(`content-type ${String(type)}`)
    // A type made up by the gateway would change how a browser reads the body.
    if (!shape.typed && type !== undefined) failures.push(`content-type ${String(type)} made up`)
    if (res.headers['x-shape-length'] !== String(bodyOf(shape).length)) failures.push('an end-to-end header lost')
    if (shape.repeated && JSON.stringify(res.headers['x-repeated']) !== '["one","two"]') failures.push(`repeated header ${JSON.stringify(res.headers['x-repeated'])}`)
    const length = res.headers['content-length']
    // Whatever the framing, a declared length must be the body's (for HEAD: the length a GET would get).
    if (length !== undefined && !NO_BODY.has(shape.status) && Number(length) !== bodyOf(shape).length) failures.push(`content-length ${String(length)}`)
    if (pool.inFlight !== 0) failures.push(`${pool.inFlight} left in flight`)
    if (failures.length > 0) throw new Error(`${JSON.stringify(shape)}: ${failures.join(', ')}`)
  }), { numRuns: 120, seed: 20261126 })
  t.equal(pool.targets[0].requests, runs, 'one try per request')
  t.equal(pool.targets[0].failures, errors, 'only the 5xx answers counted as failures of the target')
})
