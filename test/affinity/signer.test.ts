import { test, type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie, { Signer } from '@fastify/cookie'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import lb, { type AffinityResult, type CookieSigner, type LbOptions } from '../../lib/index'
import { CookieJar } from '../helpers/cookie-jar'
import { Client, sequence } from '../helpers/gateway'
import { SECRET, sendCookie, stickyGateway, tally } from './fixtures'

const OLD_KEY = 'the-old-signing-key-0123456789ab'
const NEW_KEY = 'the-new-signing-key-0123456789ab'

/** The payload a signer is given for pool `main`'s cookie: target id, expiry (base 36), cookie name. */
function payload (id: string, expiry = 0, cookie = 'lb_main'): string {
  return `${id}.${expiry.toString(36)}.${cookie}`
}

/** A signer backed by a key store: its keys change while the gateway runs, as a secrets manager rotates them. */
class KeyStoreSigner implements CookieSigner {
  private signer: Signer
  constructor (keys: string[]) { this.signer = new Signer(keys) }
  rotate (keys: string[]): void { this.signer = new Signer(keys) }
  sign (value: string): string { return this.signer.sign(value) }
  unsign (signed: string): { valid: boolean, renew: boolean, value: string | null } { return this.signer.unsign(signed) }
}

test("affinity signed by @fastify/cookie's Signer: clients stick, the value is the Signer's, forgeries are rejected", async (t) => {
  const signer = new Signer(NEW_KEY)
  const sticky = await stickyGateway(t, ['a', 'b', 'c'], { secret: signer })
  const { gw, jar } = sticky
  const alice = jar()
  t.same(await sequence(alice, gw.url + '/x', 5), ['a', 'a', 'a', 'a', 'a'], 'round robin would rotate; the cookie keeps her on a')
  const value = alice.cookies.get('lb_main') ?? ''
  t.equal(value, signer.sign(payload('a')), "the value is the Signer's signature of id, expiry and cookie name")
  t.same(signer.unsign(value), { valid: true, renew: false, value: payload('a') })

  const forgeries: Record<string, string> = {
    'a tampered signature': value.slice(0, -2) + (value.endsWith('AA') ? 'BB' : 'AA'),
    'another target, signature kept': payload('b') + value.slice(payload('a').length),
    'signed by another key': new Signer('not-the-gateway-key-0123456789ab').sign(payload('b')),
    "the app's own signed cookie of a similar text": signer.sign('b.0'),
    "another pool's cookie, same signer": signer.sign(payload('b', 0, 'lb_other')),
    'an unsigned payload': payload('b'),
    'longer than any cookie': 'b'.repeat(5000)
  }
  for (const [what, forged] of Object.entries(forgeries)) {
    const { res, produced, client: mallory } = await sendCookie(sticky, forged)
    t.equal(res.status, 200, `${what}: answered`)
    t.same(produced, ['rejected'], `${what}: rejected`)
    t.same(signer.unsign(mallory.cookies.get('lb_main') ?? '').valid, true, `${what}: replaced by a valid cookie`)
  }
})

test('key rotation with a Signer: a cookie of the old key is honoured and re-signed with the new one, once', async (t) => {
  const store = new KeyStoreSigner([OLD_KEY])
  const { gw, client: firstClient, results } = await stickyGateway(t, ['a', 'b', 'c'], { secret: store, maxAge: 600 })
  const first = new CookieJar(firstClient)
  t.same(await sequence(first, gw.url + '/x', 2), ['a', 'a'])
  const byOld = first.cookies.get('lb_main') ?? ''
  t.equal(new Signer(OLD_KEY).unsign(byOld).valid, true, 'signed with the old key')

  // The store now signs with NEW and still accepts OLD. A verified value is remembered for its connection's life,
  // so the rotation is seen on the client's next connection.
  store.rotate([NEW_KEY, OLD_KEY])
  const client = new Client()
  t.teardown(async () => client.close())
  const later = new CookieJar(client)
  later.cookies.set('lb_main', byOld)
  const res = await later.send(gw.url + '/x')
  t.equal(res.servedBy, 'a', 'the old cookie is honoured: same target')
  t.equal(later.last.length, 1, 're-signed')
  const byNew = later.cookies.get('lb_main') ?? ''
  t.same(new Signer(NEW_KEY).unsign(byNew), { valid: true, renew: false, value: payload('a', parseInt(byOld.split('.')[1], 36)) }, 'same target and expiry, signed with the new key')
  t.equal(later.last[0].attributes['max-age'] !== undefined, true, 'with the lifetime left')
  t.same(await sequence(later, gw.url + '/x', 3), ['a', 'a', 'a'])
  t.equal(later.last.length, 0, 'a cookie of the new key is not re-signed')

  // OLD retired: its cookies are rejected (on a new connection), the client is balanced again.
  store.rotate([NEW_KEY])
  const third = new Client()
  t.teardown(async () => third.close())
  const stale = new CookieJar(third)
  stale.cookies.set('lb_main', byOld)
  const before = results.length
  await stale.send(gw.url + '/x')
  t.same(results.slice(before), ['rejected'])
  t.same(new Signer(NEW_KEY).unsign(stale.cookies.get('lb_main') ?? '').valid, true, 'the new cookie is signed with the new key')
  t.same(tally(results), { miss: 1, hit: 5, rejected: 1 })
})

test('a signer that throws on what a client sent has refused it', async (t) => {
  const signer = new Signer(NEW_KEY)
  const picky: CookieSigner = {
    sign: (value) => signer.sign(value),
    unsign: (signed) => {
      if (signed.startsWith('!')) throw new Error('not a value of this key store')
      return signer.unsign(signed)
    }
  }
  const { res, produced } = await sendCookie(await stickyGateway(t, ['a', 'b'], { secret: picky }), '!boom')
  t.equal(res.status, 200)
  t.same(produced, ['rejected'])
})

interface EchoUpstream {
  server: Server
  url: string
}

/** An upstream that answers with its id and the Cookie header it got, and sets a cookie of its own. */
async function echoUpstream (t: Test, id: string): Promise<EchoUpstream> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': id, 'set-cookie': `up_${id}=1; Path=/` })
    res.end(JSON.stringify({ id, cookie: req.headers.cookie ?? null }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => new Promise<void>((resolve) => server.close(() => resolve())))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

async function cookieGateway (t: Test, options: LbOptions): Promise<{ app: FastifyInstance, base: string, client: Client, results: AffinityResult[] }> {
  const app = Fastify()
  await app.register(fastifyCookie, { secret: 'the gateway has its own cookie secret' })
  await app.register(lb, options)
  // The gateway's own cookie on proxied answers, set through @fastify/cookie.
  app.all('/*', {
    config: { upstream: 'main' },
    preHandler: (request, reply, done) => {
      reply.setCookie('gw', 'set-by-gateway', { path: '/', signed: true })
      done()
    }
  }, app.lb.forward)
  app.get('/own', async (request) => ({ cookies: request.cookies, gw: request.unsignCookie(request.cookies.gw ?? '') }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const results: AffinityResult[] = []
  app.lb.pool('main').on('affinity', (result: AffinityResult) => results.push(result))
  const client = new Client()
  t.teardown(async () => {
    await client.close()
    await app.close()
  })
  return { app, base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, client, results }
}

for (const [kind, secret] of [['keys', SECRET], ['a Signer', new Signer(NEW_KEY)]] as const) {
  test(`a gateway that registered @fastify/cookie, affinity signed with ${kind}: every cookie passes, forgeries are ignored`, async (t) => {
    const ups = await Promise.all(['a', 'b', 'c'].map(async (id) => echoUpstream(t, id)))
    const { base, client, results } = await cookieGateway(t, {
      pools: { main: { targets: ups.map((u, i) => ({ url: u.url, id: 'abc'[i] })), algorithm: 'round-robin', affinity: { secret } } }
    })
    const alice = new CookieJar(client)
    alice.cookies.set('app', 'x y')
    const first = await alice.send(base + '/x')
    t.same(alice.last.map((c) => c.name).sort(), ['gw', 'lb_main', 'up_a'], "the gateway's, the affinity and the upstream's cookies all reach the client")
    t.same(JSON.parse(first.text), { id: 'a', cookie: 'app=x y' })

    const answers: unknown[] = []
    for (let i = 0; i < 3; i++) answers.push(JSON.parse((await alice.send(base + '/x')).text))
    const sent = alice.header()
    t.same(answers, Array(3).fill({ id: 'a', cookie: sent }), 'sticky, and the Cookie header reaches the upstream as the client sent it')
    for (const name of ['app', 'lb_main', 'gw', 'up_a']) t.ok(sent.includes(`${name}=`), `${name} is sent back`)
    t.same(alice.last.map((c) => c.name).sort(), ['gw', 'up_a'], 'a pinned client gets no affinity cookie again')

    const own = JSON.parse((await alice.send(base + '/own')).text)
    t.equal(own.cookies.lb_main, alice.cookies.get('lb_main'), "the gateway's routes read the affinity cookie through request.cookies")
    t.same(own.gw, { valid: true, renew: false, value: 'set-by-gateway' }, "the gateway's own signed cookie works as configured")

    // Forged and duplicated affinity cookies, beside valid app cookies: rejected, balanced afresh, the app's cookies untouched.
    const bob = new CookieJar(client)
    bob.cookies.set('app', '1')
    bob.cookies.set('lb_main', 'a.0.forged')
    const before = results.length
    const forged = JSON.parse((await bob.send(base + '/x')).text)
    t.equal(forged.cookie, 'app=1; lb_main=a.0.forged', 'the forged cookie is passed on, not trusted')
    const valid = alice.cookies.get('lb_main') ?? ''
    const carol = await client.send(base + '/x', { headers: { cookie: `lb_main=forged; lb_main=${valid}` } })
    t.same(results.slice(before), ['rejected', 'rejected'], 'the first occurrence counts, as in the header')
    t.not(carol.servedBy, undefined)
    t.match(tally(results), { miss: 1, hit: 3, rejected: 2 })
  })
}
