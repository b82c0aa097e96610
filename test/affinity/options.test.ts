import { test } from 'tap'
import Fastify from 'fastify'
import lb from '../../lib/index'
import { Signer } from '@fastify/cookie'
import { defaultCookieName, resolveAffinity } from '../../lib/affinity/options'
import { HmacCodec } from '../../lib/affinity/hmac-codec'
import { SignerCodec } from '../../lib/affinity/signer-codec'

const SECRET = 'sixteen-bytes-at-least-0123456789'
const pool = 'users'

const cases: Array<[string, unknown, RegExp]> = [
  ['not an object', 'yes', /affinity = "yes" \(must be an object/],
  ['no secret', {}, /affinity\.secret = undefined \(is required/],
  ['an empty secret list', { secret: [] }, /affinity\.secret = \[\] \(is required/],
  ['a short secret', { secret: 'hunter2' }, /affinity\.secret = "<7 bytes>" \(must be at least 16 bytes\)/],
  ['a short secret in a list', { secret: [SECRET, 'tiny'] }, /affinity\.secret\[1\] = "<4 bytes>"/],
  ['a secret of another type', { secret: 42 }, /affinity\.secret = "<number>" \(must be a string or Buffer of at least 16 bytes, a list of them, or a signer with sign and unsign functions\)/],
  ['a list holding another type', { secret: [SECRET, 42] }, /affinity\.secret\[1\] = "<number>" \(must be a string or a Buffer\)/],
  ['an object without sign and unsign', { secret: { key: SECRET } }, /affinity\.secret = "<object>" \(must be .* or a signer with sign and unsign functions\)/],
  ['a signer without unsign', { secret: { sign: (v: string) => v } }, /affinity\.secret = "<object>" \(must be .*a signer with sign and unsign/],
  ['a signer whose unsign is no function', { secret: { sign: (v: string) => v, unsign: true } }, /affinity\.secret = "<object>"/],
  ['a signer in a list', { secret: [new Signer(SECRET)] }, /affinity\.secret\[0\] = "<object>" \(must be a string or a Buffer\)/],
  ['an unknown option', { secret: SECRET, ttl: 5 }, /affinity\.ttl = 5 \(is not an affinity option\)/],
  ['a cookie name with a space', { secret: SECRET, cookie: 'my cookie' }, /affinity\.cookie = "my cookie"/],
  ['a cookie name with a separator', { secret: SECRET, cookie: 'a;b' }, /affinity\.cookie = "a;b"/],
  ['a negative maxAge', { secret: SECRET, maxAge: -1 }, /affinity\.maxAge = -1/],
  ['a fractional maxAge', { secret: SECRET, maxAge: 1.5 }, /affinity\.maxAge = 1\.5/],
  ['a maxAge beyond 400 days', { secret: SECRET, maxAge: 34_560_001 }, /affinity\.maxAge = 34560001/],
  ['an idleTimeout of one second', { secret: SECRET, idleTimeout: 1 }, /affinity\.idleTimeout = 1 \(must be 0 \(none\) or a whole number of seconds from 2 to 34560000\)/],
  ['a negative idleTimeout', { secret: SECRET, idleTimeout: -5 }, /affinity\.idleTimeout = -5/],
  ['a fractional idleTimeout', { secret: SECRET, idleTimeout: 2.5 }, /affinity\.idleTimeout = 2\.5/],
  ['a string idleTimeout', { secret: SECRET, idleTimeout: '30m' }, /affinity\.idleTimeout = "30m"/],
  ['an idleTimeout beyond 400 days', { secret: SECRET, idleTimeout: 34_560_001 }, /affinity\.idleTimeout = 34560001/],
  ['a relative path', { secret: SECRET, path: 'app' }, /affinity\.path = "app"/],
  ['a path with a semicolon', { secret: SECRET, path: '/a;b' }, /affinity\.path = "\/a;b"/],
  ['a domain with a semicolon', { secret: SECRET, domain: 'a.test; secure' }, /affinity\.domain = "a\.test; secure"/],
  ['an unknown sameSite', { secret: SECRET, sameSite: 'Lax ' }, /affinity\.sameSite = "Lax "/],
  ['a string secure', { secret: SECRET, secure: 'yes' }, /affinity\.secure = "yes"/],
  ["sameSite 'none' without Secure", { secret: SECRET, sameSite: 'none', secure: false }, /affinity\.secure = false \(must not be false with sameSite 'none'/],
  ['a string httpOnly', { secret: SECRET, httpOnly: 'no' }, /affinity\.httpOnly = "no"/],
  ['a numeric strict', { secret: SECRET, strict: 1 }, /affinity\.strict = 1/]
]

for (const [what, value, message] of cases) {
  test(`affinity: ${what} is refused`, async (t) => {
    t.throws(() => resolveAffinity(pool, value), { code: 'FST_LB_INVALID_OPTION', message })
  })
}

test('a secret never appears in an error message', async (t) => {
  const secret = 'hunter2-hunter2'
  try {
    resolveAffinity(pool, { secret: [SECRET, secret] })
    t.fail('expected an error')
  } catch (err) {
    t.notOk((err as Error).message.includes('hunter2'))
    t.notOk((err as Error).message.includes(SECRET))
  }
})

test('defaults', async (t) => {
  t.equal(resolveAffinity(pool, undefined), null)
  t.equal(resolveAffinity(pool, false), null)
  const resolved = resolveAffinity(pool, { secret: SECRET })
  t.match(resolved, {
    cookie: 'lb_users', maxAge: 0, idleTimeout: 0, path: '/', domain: undefined, sameSite: 'lax', secure: 'auto', httpOnly: true, strict: false
  })
  t.ok(resolved?.codec instanceof HmacCodec, 'keys sign with the plugin\'s own HMAC')
  const byBuffer = resolveAffinity(pool, { secret: Buffer.alloc(16, 7) })?.codec.encode('a', 0) ?? ''
  t.same(resolveAffinity(pool, { secret: [SECRET, Buffer.alloc(16, 7)] })?.codec.decode(byBuffer), { id: 'a', expiry: 0, renewed: 0, renew: true }, 'Buffers count as secrets')
  t.ok(resolveAffinity(pool, { secret: new Signer(SECRET) })?.codec instanceof SignerCodec, 'an object with sign and unsign is a signer')
})

test('default cookie names are cookie-safe, stable and distinct', async (t) => {
  t.equal(defaultCookieName('users'), 'lb_users')
  t.equal(defaultCookieName('/sticky/*'), defaultCookieName('/sticky/*'))
  t.not(defaultCookieName('/a/*'), defaultCookieName('/a_*'))
  for (const name of ['/sticky/*', 'GET /x', '/', '***', 'x'.repeat(100)]) {
    t.match(defaultCookieName(name), /^lb_[A-Za-z0-9_]{1,48}$/, name)
  }
})

test('bad affinity options fail startup naming the pool: named and inline pools', async (t) => {
  const named = Fastify()
  t.teardown(async () => { await named.close() })
  await t.rejects(async () => {
    await named.register(lb, { pools: { users: { targets: ['http://127.0.0.1:9'], affinity: { secret: 'short' } } } })
  }, { code: 'FST_LB_INVALID_OPTION', message: /pool "users": affinity\.secret = "<5 bytes>"/ })

  const inline = Fastify()
  t.teardown(async () => { await inline.close() })
  await inline.register(lb)
  t.throws(() => {
    inline.get('/r', { config: { upstream: { targets: ['http://127.0.0.1:9'], affinity: { secret: SECRET, sameSite: 'none', secure: false } } } }, inline.lb.forward)
  }, { code: 'FST_LB_INVALID_OPTION', message: /pool "\/r": affinity\.secure = false/ })
})
