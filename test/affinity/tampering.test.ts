import { test } from 'tap'
import { resolveAffinity, type ResolvedAffinity } from '../../lib/affinity/options'
import { CookieJar } from '../helpers/cookie-jar'
import { SECRET, sendCookie, stickyGateway, tally } from './fixtures'

function signer (options: Parameters<typeof resolveAffinity>[1]): ResolvedAffinity {
  const resolved = resolveAffinity('main', options)
  if (resolved === null) throw new Error('affinity options expected')
  return resolved
}

const now = (): number => Math.floor(Date.now() / 1000)

test('every kind of bad cookie is ignored, counted, and the request served normally', async (t) => {
  const sticky = await stickyGateway(t, ['a', 'b', 'c'], { maxAge: 600 })
  const { ups, gw, jar, results } = sticky
  const ours = signer({ secret: SECRET, maxAge: 600 })
  const valid = ours.codec.encode('b', now() + 300)
  const [id, exp, sig] = valid.split('.')
  const flip = (s: string): string => (s[0] === 'A' ? 'B' : 'A') + s.slice(1)
  const variants: Record<string, string> = {
    'forged signature': `b.${exp}.${'x'.repeat(32)}`,
    'tampered target id': `c.${exp}.${sig}`,
    'tampered expiry': `${id}.${(parseInt(exp, 36) + 60).toString(36)}.${sig}`,
    'one signature character changed': `${id}.${exp}.${flip(sig)}`,
    'truncated signature': valid.slice(0, -1),
    'no separators': 'garbage',
    'empty value': '',
    'empty id': `.${exp}.${sig}`,
    'characters outside the format': `b!.${exp}.${sig}`,
    'percent-encoded junk': '%zz%00',
    'non-ASCII': 'b.é.' + sig,
    oversized: 'b.' + 'a'.repeat(6000) + '.' + sig,
    'expiry beyond the configured lifetime': ours.codec.encode('b', now() + 6000),
    'no expiry while a lifetime is configured': ours.codec.encode('b', 0),
    'signed with an unknown secret': signer({ secret: 'another-secret-of-enough-length', maxAge: 600 }).codec.encode('b', now() + 300),
    'signed for another cookie name': signer({ secret: SECRET, maxAge: 600, cookie: 'other' }).codec.encode('b', now() + 300)
  }
  const served = new Set<string>()
  for (const [what, value] of Object.entries(variants)) {
    const { res, produced, client } = await sendCookie(sticky, value)
    t.equal(res.status, 200, `${what}: served`)
    t.same(produced, ['rejected'], `${what}: counted as rejected`)
    t.equal(client.last.length, 1, `${what}: a new cookie replaces it`)
    served.add(res.servedBy ?? '-')
    const again = await client.send(gw.url + '/x')
    t.equal(again.servedBy, res.servedBy, `${what}: the new cookie holds`)
  }
  t.same([...served].sort(), ['a', 'b', 'c'], 'balanced as new clients are, never outside the pool')
  // A genuine cookie past its expiry: a client that came back too late, counted apart from forgeries.
  const expired = await sendCookie(sticky, ours.codec.encode('b', now() - 1))
  t.same(expired.produced, ['expired'], 'an expired cookie is counted as expired')
  t.equal(expired.client.last.length, 1, '...and replaced by a new cookie')
  t.equal(tally(results).rejected, Object.keys(variants).length)
  t.same(ups.map((u) => u.hits).reduce((x, y) => x + y), Object.keys(variants).length * 2 + 1)

  // The control: the untampered value is honoured.
  const control = jar()
  control.cookies.set('lb_main', valid)
  t.equal((await control.send(gw.url + '/x')).servedBy, 'b')
  t.equal(control.last.length, 0)
})

test('a validly signed cookie for a target the pool does not have is a reassignment', async (t) => {
  const { gw, jar, results } = await stickyGateway(t, ['a', 'b'])
  const client = jar()
  client.cookies.set('lb_main', signer({ secret: SECRET }).codec.encode('zz', 0))
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 200)
  t.same(results, ['reassigned'])
  t.match(client.cookies.get('lb_main'), /^a\.0\./)
})

test('raw headers: duplicate, quoted and oversized cookies never cause a 5xx', async (t) => {
  const { gw, client, results } = await stickyGateway(t, ['a', 'b'])
  const good = signer({ secret: SECRET }).codec.encode('b', 0)
  const headers = [
    `lb_main="${good}"`,
    `lb_main=${good}; lb_main=junk`,
    `lb_main=junk; lb_main=${good}`,
    'lb_main',
    'lb_main=; =; ;;',
    `lb_main=${'x'.repeat(12_000)}`
  ]
  for (const cookie of headers) {
    const res = await new CookieJar(client).send(gw.url + '/x', { headers: { cookie } })
    t.ok(res.status === 200 && (res.servedBy === 'a' || res.servedBy === 'b'), `${cookie.slice(0, 40)}: ${res.status} ${res.servedBy}`)
  }
  t.equal(results.length, headers.length, 'one affinity result per request')
})
