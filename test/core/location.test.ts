import { test, type Test } from 'tap'
import Fastify, { type FastifyServerOptions } from 'fastify'
import replyFrom from '@fastify/reply-from'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import lb from '../../lib/index'
import { rewriteUrl } from '../../lib/forward/location-rewrite'
import type { PoolOptions } from '../../lib/options/resolve'
import { Client, startGateway, type Gateway } from '../helpers/gateway'
import { rawRequest } from '../helpers/raw-http'
import { startupError } from '../helpers/startup'

/**
 * What the upstream answers, as the request's `x-answer` header asks (JSON: status and headers). `{self}` in a
 * header value stands for the upstream's own origin as it sees it, from the Host header it was sent, which is
 * the target's: upstreams build absolute URLs that way. `x-stream` makes the answer chunked, so it is streamed.
 */
function answer (req: IncomingMessage, res: ServerResponse): void {
  const spec = JSON.parse(String(req.headers['x-answer'] ?? '{}')) as { status?: number, headers?: Record<string, string | string[]> }
  const self = `http://${String(req.headers.host)}`
  const headers: Record<string, string | string[]> = { 'content-type': 'text/plain', 'x-path': String(req.url) }
  for (const [name, value] of Object.entries(spec.headers ?? {})) {
    headers[name] = Array.isArray(value) ? value.map((v) => v.replaceAll('{self}', self)) : value.replaceAll('{self}', self)
  }
  if (req.headers['x-stream'] === undefined) headers['content-length'] = '2'
  res.writeHead(spec.status ?? 200, headers)
  res.end('ok')
}

async function startUpstream (t: Test): Promise<{ url: string, port: number }> {
  const server = createServer(answer)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const port = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${port}`, port }
}

async function gateway (t: Test, pool: PoolOptions, serverOptions: FastifyServerOptions = {}): Promise<Gateway> {
  const gw = await startGateway({ pools: { main: { retry: false, ...pool } } }, undefined, serverOptions)
  t.teardown(gw.close)
  return gw
}

/** Sends a request whose upstream answers with `headers` (and `status`); returns the answer as the client got it. */
async function ask (
  client: Client,
  url: string,
  headers: Record<string, string | string[]>,
  status = 302,
  extra: Record<string, string> = {}
): Promise<{ status: number, headers: Record<string, string | string[] | undefined> }> {
  const res = await client.send(url, { headers: { 'x-answer': JSON.stringify({ status, headers }), ...extra } })
  return { status: res.status, headers: res.headers }
}

test('Location, Content-Location and Refresh naming the target (origin and base path) are rewritten to the gateway', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, { targets: [up.url + '/api'] })
  const client = new Client()
  t.teardown(async () => { await client.close() })
  const at = gw.url + '/users/1'

  const cases: Array<[string, number, Record<string, string | string[]>, Record<string, string | string[]>]> = [
    ['a 301 below the base path', 301, { location: '{self}/api/users/2' }, { location: gw.url + '/users/2' }],
    ['a 302 with a query and a fragment', 302, { location: '{self}/api/users/2?tab=a&b=%2F#top' }, { location: gw.url + '/users/2?tab=a&b=%2F#top' }],
    ['a 201 with a Location', 201, { location: '{self}/api/users/3' }, { location: gw.url + '/users/3' }],
    ['the base path itself', 302, { location: '{self}/api' }, { location: gw.url + '/' }],
    ['the base path and a query', 302, { location: '{self}/api?x=1' }, { location: gw.url + '/?x=1' }],
    ['the base path and a fragment', 302, { location: '{self}/api#f' }, { location: gw.url + '/#f' }],
    ['the scheme in capitals', 302, { location: `HTTP://127.0.0.1:${up.port}/api/x` }, { location: gw.url + '/x' }],
    ['a scheme-relative URL', 302, { location: `//127.0.0.1:${up.port}/api/x` }, { location: gw.url + '/x' }],
    ['Content-Location', 200, { 'content-location': '{self}/api/users/2' }, { 'content-location': gw.url + '/users/2' }],
    ['Refresh', 200, { refresh: '5; url={self}/api/x?y=1' }, { refresh: `5; url=${gw.url}/x?y=1` }],
    ['Refresh with a quoted URL', 200, { refresh: "0;URL='{self}/api/x'" }, { refresh: `0;URL='${gw.url}/x'` }],
    ['Refresh without url=', 200, { refresh: '3, {self}/api/x' }, { refresh: `3, ${gw.url}/x` }],
    ['all three at once', 303, { location: '{self}/api/a', 'content-location': '{self}/api/b', refresh: '1; url={self}/api/c' },
      { location: gw.url + '/a', 'content-location': gw.url + '/b', refresh: `1; url=${gw.url}/c` }],
    // Outside the base path: no path of the gateway leads there, so the URL is passed on as sent.
    ['the origin outside the base path', 302, { location: '{self}/other/x' }, { location: `${up.url}/other/x` }],
    ['a longer segment than the base path', 302, { location: '{self}/apix/y' }, { location: `${up.url}/apix/y` }],
    ['the bare origin', 302, { location: '{self}/' }, { location: `${up.url}/` }],
    // Other addresses and relative URLs name no target.
    ['a foreign origin', 302, { location: 'https://example.com/api/users/2' }, { location: 'https://example.com/api/users/2' }],
    ['the target host on another port', 302, { location: 'http://127.0.0.1:1/api/x' }, { location: 'http://127.0.0.1:1/api/x' }],
    ['the target host and port over https', 302, { location: `https://127.0.0.1:${up.port}/api/x` }, { location: `https://127.0.0.1:${up.port}/api/x` }],
    ['a URL with credentials', 302, { location: `http://u@127.0.0.1:${up.port}/api/x` }, { location: `http://u@127.0.0.1:${up.port}/api/x` }],
    ['a path-absolute URL', 302, { location: '/api/users/2' }, { location: '/api/users/2' }],
    ['a relative URL', 302, { location: 'users/2' }, { location: 'users/2' }],
    ['a foreign Content-Location', 200, { 'content-location': 'http://example.com/x' }, { 'content-location': 'http://example.com/x' }],
    ['a Refresh without a URL', 200, { refresh: '30' }, { refresh: '30' }],
    ['a foreign Refresh', 200, { refresh: '5; url=http://example.com/' }, { refresh: '5; url=http://example.com/' }]
  ]
  for (const [what, status, sent, expected] of cases) {
    const res = await ask(client, at, sent, status)
    t.equal(res.status, status, `${what}: status`)
    for (const [name, value] of Object.entries(expected)) t.same(res.headers[name], value, `${what}: ${name}`)
  }

  // A streamed answer (chunked) has its headers rewritten alike.
  const streamed = await ask(client, at, { location: '{self}/api/s' }, 302, { 'x-stream': '1' })
  t.same([streamed.headers.location, streamed.headers['transfer-encoding']], [gw.url + '/s', 'chunked'], 'a streamed answer too')
})

test('a target without a base path: its whole origin maps to the gateway', async (t) => {
  const up = await startUpstream(t)
  // Named by host name, and answering in capitals: hosts compare without regard to case.
  const gw = await gateway(t, { targets: [`http://localhost:${up.port}`] })
  const client = new Client()
  t.teardown(async () => { await client.close() })
  const at = gw.url + '/users/1'
  t.equal((await ask(client, at, { location: '{self}/users/2' })).headers.location, gw.url + '/users/2')
  t.equal((await ask(client, at, { location: `http://LocalHost:${up.port}/x` })).headers.location, gw.url + '/x')
  t.equal((await ask(client, at, { location: `http://localhost:${up.port}` })).headers.location, gw.url + '/')
  t.equal((await ask(client, at, { location: `http://localhost:${up.port}?q` })).headers.location, gw.url + '/?q')
  t.equal((await ask(client, at, { location: `http://127.0.0.1:${up.port}/x` })).headers.location, `http://127.0.0.1:${up.port}/x`,
    'another name of the same address is not the target URL')
})

test('rewriteLocation: false passes the headers on as the upstream sent them', async (t) => {
  const up = await startUpstream(t)
  const gw = await gateway(t, { targets: [up.url + '/api'], rewriteLocation: false })
  const client = new Client()
  t.teardown(async () => { await client.close() })
  const sent = { location: '{self}/api/users/2', 'content-location': '{self}/api/users/2', refresh: '5; url={self}/api/x' }
  const res = await ask(client, gw.url + '/users/1', sent, 301)
  t.same(
    [res.status, res.headers.location, res.headers['content-location'], res.headers.refresh],
    [301, `${up.url}/api/users/2`, `${up.url}/api/users/2`, `5; url=${up.url}/api/x`]
  )
})

test('the gateway origin is the one the client used: its Host, or X-Forwarded-Proto/Host from a trusted proxy', async (t) => {
  const up = await startUpstream(t)
  const sent = { location: '{self}/api/users/2' }
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com' }

  const trusting = await gateway(t, { targets: [up.url + '/api'] }, { trustProxy: '127.0.0.1' })
  const client = new Client()
  t.teardown(async () => { await client.close() })
  t.equal((await ask(client, trusting.url + '/users/1', sent, 302, forwarded)).headers.location, 'https://api.example.com/users/2',
    'behind a trusted proxy: the scheme and host the proxy was asked for')

  const direct = await gateway(t, { targets: [up.url + '/api'] })
  t.equal((await ask(client, direct.url + '/users/1', sent, 302, forwarded)).headers.location, direct.url + '/users/2',
    'X-Forwarded-* from a client that is no trusted proxy count for nothing')
  t.equal((await ask(client, direct.url + '/users/1', sent, 302, { host: 'gw.example:8443' })).headers.location, 'http://gw.example:8443/users/2',
    'the Host the client sent')

  // A Host that is no host name would make another URL of it: the client gets the path, which it resolves itself.
  const port = new URL(direct.url).port
  const lines = (host: string): string[] => ['GET /users/1 HTTP/1.1', `Host: ${host}`, `X-Answer: ${JSON.stringify({ status: 302, headers: sent })}`]
  const odd = await rawRequest(Number(port), lines('evil.example@gw.example'))
  t.equal(odd.status, 302)
  t.match(odd.head, /\r\nlocation: \/users\/2\r\n/i)
})

test('a gateway that registered reply-from itself rewrites alike', async (t) => {
  const up = await startUpstream(t)
  const app = Fastify({ logger: false })
  await app.register(replyFrom)
  await app.register(lb, { pools: { main: { targets: [up.url + '/api'] } } })
  app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Client()
  t.teardown(async () => { await client.close(); await app.close() })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  t.equal((await ask(client, url + '/users/1', { location: '{self}/api/users/2' })).headers.location, url + '/users/2')
})

test('rewriteLocation must be a boolean', async (t) => {
  for (const value of ['yes', 1, {}]) {
    const err = await startupError({ pools: { users: { targets: ['http://127.0.0.1:9001'], rewriteLocation: value } } })
    t.equal(err.code, 'FST_LB_INVALID_OPTION')
    t.match(err.message, /pool "users": rewriteLocation = .* \(must be true or false\)/)
  }
})

test('rewriteUrl: origins compare as URL parsers see them', async (t) => {
  const target = { origin: 'http://10.0.1.11', basePath: '/api' }
  const gw = 'https://gw.example'
  t.equal(rewriteUrl('http://10.0.1.11:80/api/x', target, gw), 'https://gw.example/x', 'the default port written out')
  t.equal(rewriteUrl('http://10.0.1.11/api/x', target, gw), 'https://gw.example/x')
  t.equal(rewriteUrl('http://10.0.1.11:/api/x', target, gw), 'https://gw.example/x', 'an empty port')
  t.equal(rewriteUrl('http://10.0.1.11:8080/api/x', target, gw), undefined)
  t.equal(rewriteUrl('https://10.0.1.11:443/api/x', target, gw), undefined, 'https is another origin')
  const secure = { origin: 'https://users.internal', basePath: '' }
  t.equal(rewriteUrl('https://USERS.internal:443/a', secure, gw), 'https://gw.example/a')
  t.equal(rewriteUrl('http://users.internal/a', secure, gw), undefined)
  const v6 = { origin: 'http://[::1]:8080', basePath: '/v1/api' }
  t.equal(rewriteUrl('http://[0:0::1]:8080/v1/api/a', v6, gw), 'https://gw.example/a', 'IPv6 in another spelling')
  t.equal(rewriteUrl('http://[::1]:8080/v1/API/a', v6, gw), undefined, 'paths compare with case')
  t.equal(rewriteUrl('http://[::1]:8080/v1/api\\a', v6, gw), undefined, 'a backslash after the base path is no path separator of ours')
  t.equal(rewriteUrl('http://[::1]:8080/v1/api/a', v6, ''), '/a', 'without a gateway origin: the path alone')
  t.equal(rewriteUrl('mailto:x@[::1]', v6, gw), undefined)
  t.equal(rewriteUrl('', v6, gw), undefined)
})
