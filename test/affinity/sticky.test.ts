import { test } from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startUpstreams } from '../helpers/demo-upstream'
import lb from '../../lib/index'
import { defaultCookieName } from '../../lib/affinity/options'
import { CookieJar } from '../helpers/cookie-jar'
import { Client, sequence } from '../helpers/gateway'
import { SECRET, serve, stickyGateway, stickyPool, tally } from './fixtures'

test('50 requests from one client reach one target; the cookie is set once', async (t) => {
  const { ups, gw, jar, results } = await stickyGateway(t, ['a', 'b', 'c'])
  const alice = jar()
  const served: string[] = []
  const cookiesSet: number[] = []
  for (let i = 0; i < 50; i++) {
    const res = await alice.send(gw.url + '/x')
    served.push(res.servedBy ?? String(res.status))
    cookiesSet.push(alice.last.length)
  }
  t.same(served, Array(50).fill('a'), 'round robin would rotate; the cookie keeps the client on its first target')
  t.same(cookiesSet, [1, ...Array(49).fill(0)], 'Set-Cookie on the first answer only')
  t.same(tally(results), { miss: 1, hit: 49 })

  const value = alice.cookies.get('lb_main') ?? ''
  t.match(value, /^a\.0\.[A-Za-z0-9_-]{32}$/, 'target id, no expiry, signature')
  for (const u of ups) t.notOk(value.includes(String(u.port)), 'the value never holds an address')
})

test('cookie attributes: defaults', async (t) => {
  const { gw, jar } = await stickyGateway(t, ['a', 'b'])
  const alice = jar()
  await alice.send(gw.url + '/x')
  t.equal(alice.last.length, 1)
  const [cookie] = alice.last
  t.equal(cookie.name, 'lb_main', 'named after the pool')
  t.same(cookie.attributes, { path: '/', httponly: true, samesite: 'Lax' }, 'Path=/, HttpOnly, SameSite=Lax; no Secure over http, no Max-Age, no Domain')
})

test('cookie attributes: every option', async (t) => {
  const { gw, jar } = await stickyGateway(t, ['a', 'b'], {
    cookie: 'srv', maxAge: 3600, path: '/x', domain: 'example.test', sameSite: 'strict', secure: true, httpOnly: false
  })
  const alice = jar()
  await alice.send(gw.url + '/x/y')
  t.equal(alice.last.length, 1)
  const [cookie] = alice.last
  t.equal(cookie.name, 'srv')
  t.same(cookie.attributes, { 'max-age': '3600', domain: 'example.test', path: '/x', samesite: 'Strict', secure: true })
  t.match(cookie.value, /^a\.[0-9a-z]+\.[A-Za-z0-9_-]{32}$/)
  const expiry = parseInt(cookie.value.split('.')[1], 36)
  const now = Math.floor(Date.now() / 1000)
  t.ok(expiry > now + 3500 && expiry <= now + 3600, 'the signed value carries the expiry')
  t.equal((await alice.send(gw.url + '/x/y')).servedBy, 'a')
})

test("Secure 'auto' follows the request's protocol (X-Forwarded-Proto with trustProxy)", async (t) => {
  const ups = await startUpstreams(['a'])
  const { gw, client } = await serve(t, ups, { pools: { main: stickyPool(ups) } }, undefined, { trustProxy: true })
  const overHttps = new CookieJar(client)
  await overHttps.send(gw.url + '/x', { headers: { 'x-forwarded-proto': 'https' } })
  t.equal(overHttps.last[0]?.attributes.secure, true)
  const overHttp = new CookieJar(client)
  await overHttp.send(gw.url + '/x')
  t.equal(overHttp.last[0]?.attributes.secure, undefined)
})

test('other clients are balanced as usual and keep their own targets', async (t) => {
  const { gw, jar, results, pool } = await stickyGateway(t, ['a', 'b', 'c'])
  const clients = [jar(), jar(), jar(), jar()]
  const served: string[][] = clients.map(() => [])
  // Interleaved, as concurrent users would be.
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < clients.length; i++) {
      served[i].push((await clients[i].send(gw.url + '/x')).servedBy ?? '-')
    }
  }
  t.same(served.map((s) => [...new Set(s)]), [['a'], ['b'], ['c'], ['a']], 'new clients rotate, then stay')
  t.same(tally(results), { miss: 4, hit: 36 })
  t.same(pool.affinity?.counts, { hit: 36, miss: 4, reassigned: 0, rejected: 0, expired: 0 }, 'the counters agree with the events')
})

test('counters run without listeners; a client without cookies is a new client every time', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const { gw, client } = await serve(t, ups, { pools: { main: stickyPool(ups) } })
  t.same(await sequence(client, gw.url + '/x', 4), ['a', 'b', 'a', 'b'])
  const pool = gw.app.lb.pool('main')
  t.equal(pool.listenerCount('affinity'), 0)
  t.same(pool.affinity?.counts, { hit: 0, miss: 4, reassigned: 0, rejected: 0, expired: 0 })
})

test('an inline pool on a route: default cookie name from the route, GET and HEAD share it', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const { gw, client } = await serve(t, ups, {}, (app) => {
    app.get('/sticky/*', { config: { upstream: stickyPool(ups) } }, app.lb.forward)
  })
  const name = defaultCookieName('/sticky/*')
  t.match(name, /^lb_sticky_[0-9a-f]{6}$/)
  const alice = new CookieJar(client)
  t.equal((await alice.send(gw.url + '/sticky/x')).servedBy, 'a')
  t.equal(alice.last[0]?.name, name)
  const head = await alice.send(gw.url + '/sticky/x', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.headers['x-served-by'], 'a', 'HEAD follows the same cookie')
  t.equal(alice.last.length, 0)
})

test('a gateway that registered @fastify/cookie itself keeps it; parsed cookies read alike', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const app = Fastify()
  await app.register(fastifyCookie, { secret: 'the gateway has its own cookie secret' })
  await app.register(lb, { pools: { main: stickyPool(ups) } })
  app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  app.get('/own', async (request, reply) => {
    reply.setCookie('own', 'yes')
    return request.cookies
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const results: string[] = []
  app.lb.pool('main').on('affinity', (result: string) => results.push(result))
  const client = new Client()
  t.teardown(async () => {
    await client.close()
    await app.close()
    await Promise.all(ups.map(async (u) => u.stop()))
  })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const alice = new CookieJar(client)
  t.same(await sequence(alice, base + '/x', 5), ['a', 'a', 'a', 'a', 'a'])
  const own = await alice.send(base + '/own')
  t.same(JSON.parse(own.text), { lb_main: alice.cookies.get('lb_main') }, 'the gateway\'s own cookie handling works as configured')
  t.same(alice.last.map((c) => c.name), ['own'])
  const bob = new CookieJar(client)
  bob.cookies.set('lb_main', '')
  t.same(await sequence(bob, base + '/x', 3), ['b', 'b', 'b'])
  t.same(results, ['miss', 'hit', 'hit', 'hit', 'hit', 'rejected', 'hit', 'hit'], 'an empty value is rejected, as when the plugin reads the header')
})

test("an upstream's own Set-Cookie headers pass through beside the affinity cookie", async (t) => {
  const upstream = createServer((req, res) => {
    res.setHeader('set-cookie', ['app=1; Path=/', 'theme=dark'])
    res.setHeader('x-served-by', 'u')
    res.end('ok')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close() })
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const { gw, client } = await serve(t, [], { pools: { main: { targets: [{ url, id: 'u' }], affinity: { secret: SECRET } } } })
  const alice = new CookieJar(client)
  await alice.send(gw.url + '/x')
  t.same(alice.last.map((c) => c.name).sort(), ['app', 'lb_main', 'theme'])
  await alice.send(gw.url + '/x')
  t.same(alice.last.map((c) => c.name).sort(), ['app', 'theme'], 'pinned: only the upstream\'s')
})

test("an upstream's cookie of the pool's cookie name never replaces the affinity cookie; its other cookies pass", async (t) => {
  // An inner gateway with a pool of the same name would set such a cookie.
  const upstream = createServer((_request, response) => {
    response.setHeader('set-cookie', ['lb_main=from-upstream; Path=/', 'other=1; Path=/'])
    response.setHeader('content-type', 'text/plain')
    response.end('ok')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()))
  const app = Fastify({ logger: false })
  await app.register(lb, { pools: { main: { targets: [`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`], affinity: { secret: SECRET } } } })
  app.get('/*', { config: { upstream: 'main' } }, app.lb.forward)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Client()
  t.teardown(async () => { await client.close(); await app.close(); upstream.close() })
  const alice = new CookieJar(client)
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/x`

  await alice.send(url)
  t.same(alice.last.map((c) => c.name), ['other', 'lb_main'], 'a new client: the upstream\'s other cookie, then ours, once')
  t.match(alice.cookies.get('lb_main'), /^t[0-9a-f]{12}\.0\./, 'the value is the gateway\'s')
  await alice.send(url)
  t.same(alice.last.map((c) => c.name), ['other'], 'a returning client: the upstream\'s cookie of our name is dropped')
  t.match(alice.cookies.get('lb_main'), /^t[0-9a-f]{12}\.0\./, 'and the client keeps its pin')
})
