import { test } from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:https'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DemoUpstream, startUpstreams } from '../helpers/demo-upstream'
import { Client, sequence, startGateway } from '../helpers/gateway'

test('routes without an upstream are untouched; inline pools are shared by GET and HEAD', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const targets = ups.map((u) => ({ url: u.url, id: u.id }))
  const gw = await startGateway({}, (app) => {
    app.get('/plain', async (request) => ({ target: request.target }))
    app.get('/inline/*', { config: { upstream: { targets, algorithm: 'round-robin' } } }, app.lb.forward)
    app.get('/own/*', { config: { upstream: { targets: [targets[1]] } } }, async (request, reply) => {
      // A handler of the user's own: request.target is set, reply.from does the rest.
      return reply.from(request.target!.url + '/custom', { rewriteHeaders: (h) => ({ ...h, 'x-picked': request.target!.id }) })
    })
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })

  const plain = await client.send(gw.url + '/plain')
  t.same(JSON.parse(plain.text), { target: null })
  t.same(await sequence(client, gw.url + '/inline/x', 4), ['a', 'b', 'a', 'b'])
  const head = await client.send(gw.url + '/inline/x', { method: 'HEAD' })
  t.equal(head.status, 200)
  const pool = gw.app.lb.pool('/inline/*')
  t.equal(pool.get('a')!.requests + pool.get('b')!.requests, 5, 'HEAD went through the same pool')
  t.same([...gw.app.lb.allPools()].map((p) => p.name), ['/inline/*', '/own/*'])

  const own = await client.send(gw.url + '/own/x')
  t.equal(own.status, 200)
  t.equal(own.headers['x-picked'], 'b')
  t.equal(JSON.parse(own.text).url, '/custom')
})

test("request.target is set for the route's own preHandler hooks and every hook after the handler", async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const targets = ups.map((u) => ({ url: u.url, id: u.id }))
  const seen: string[] = []
  const gw = await startGateway({ pools: { main: { targets, algorithm: 'round-robin' } } }, (app) => {
    app.addHook('onSend', async (request, _reply, payload) => {
      seen.push(`onSend ${request.url} ${String(request.target?.id)}`)
      return payload
    })
    // The plugin picks in a preHandler hook it puts first among the route's own.
    app.get('/hooked/*', {
      config: { upstream: 'main' },
      preHandler: (request, _reply, done) => { seen.push(`preHandler ${request.url} ${String(request.target?.id)}`); done() }
    }, app.lb.forward)
    // A plugin registered after fastify-lb that adds a route preHandler in its own onRoute hook, as auth plugins do.
    app.addHook('onRoute', (route) => {
      if (!route.url.startsWith('/late/')) return
      const late = (request: FastifyRequest, _reply: FastifyReply, done: () => void): void => { seen.push(`late ${request.url} ${String(request.target?.id)}`); done() }
      route.preHandler = route.preHandler === undefined ? [late] : [...[route.preHandler].flat(), late]
    })
    app.get('/late/*', { config: { upstream: 'main' } }, app.lb.forward)
    app.get('/plain/*', { config: { upstream: 'main' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })

  const served = []
  for (const path of ['/hooked/1', '/plain/2', '/late/3', '/plain/4']) served.push((await client.send(gw.url + path)).servedBy)
  t.same(served, ['a', 'b', 'a', 'b'], 'one pick per request, in round-robin order, on every kind of route')
  t.same(seen, [
    'preHandler /hooked/1 a', 'onSend /hooked/1 a',
    'onSend /plain/2 b',
    'late /late/3 a', 'onSend /late/3 a',
    'onSend /plain/4 b'
  ])
  const pool = gw.app.lb.pool('main')
  t.same([pool.get('a')!.requests, pool.get('b')!.requests, pool.inFlight], [2, 2, 0])
})

test('a request cannot steer the proxy to another origin', async (t) => {
  const up = await new DemoUpstream('a').start()
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url, id: 'a' }] } } })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const port = (gw.app.server.address() as AddressInfo).port

  async function raw (requestLine: string, host = 'evil.example'): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      let data = ''
      socket.on('data', (chunk) => { data += chunk.toString() })
      socket.on('end', () => resolve(data))
      socket.on('error', reject)
      socket.write(`${requestLine}\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    })
  }
  const absolute = await raw('GET http://evil.example/steal?x=1 HTTP/1.1')
  t.match(absolute, /^HTTP\/1\.1 200/)
  t.match(absolute, /\r\nconnection: close\r\n/i, 'the client\'s own connection header is honoured')
  t.notMatch(absolute, /keep-alive: timeout=5/i, 'the upstream\'s hop-by-hop headers are not passed on')
  t.match(absolute, /"url":"\/steal\?x=1"/, 'absolute form: only the path is forwarded')
  t.match(absolute, new RegExp(`"host":"127\\.0\\.0\\.1:${up.port}"`), 'to the chosen target, with its own Host')
  const doubleSlash = await raw('GET //evil.example/x HTTP/1.1')
  t.match(doubleSlash, /"url":"\/\/evil\.example\/x"/, 'a //host path stays a path')
  const at = await raw('GET /@evil.example/x HTTP/1.1')
  t.match(at, /"url":"\/@evil\.example\/x"/)
  t.equal(up.hits, 3, 'every request reached the one configured target')
})

test('upstream TLS certificates are verified by default', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lb-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  const cert = readFileSync(join(dir, 'cert.pem'))
  const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (_req, res) => {
    res.writeHead(200, { 'x-served-by': 'tls' })
    res.end('secure')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  const strict = await startGateway({ pools: { main: { targets: [url] } } })
  const trusting = await startGateway({ tls: { ca: cert }, pools: { main: { targets: [url] } } })
  const client = new Client()
  t.teardown(async () => {
    await client.close(); await strict.close(); await trusting.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const refused = await client.send(strict.url + '/x')
  t.equal(refused.status, 502, 'a self-signed certificate is not trusted')
  t.notOk(refused.text.includes(url.slice(8)), 'without showing the address')
  const ok = await client.send(trusting.url + '/x')
  t.equal(ok.status, 200, 'trusted once its CA is configured')
  t.equal(ok.text, 'secure')
})
