import { test } from 'tap'
import { Pool } from 'undici'
import { resolveAffinity, type ResolvedAffinity } from '../../lib/affinity/options'
import type { AffinityOptions } from '../../lib/affinity/options'
import { parseSetCookie } from '../helpers/cookie-jar'
import { until } from '../helpers/gateway'
import { SECRET, stickyGateway } from './fixtures'

const OLD_SECRET = 'old-affinity-secret-0123456789abcdef'

function signer (options: AffinityOptions): ResolvedAffinity {
  const resolved = resolveAffinity('main', options)
  if (resolved === null) throw new Error('affinity options expected')
  return resolved
}

const now = (): number => Math.floor(Date.now() / 1000)

/**
 * A client on one keep-alive connection: the gateway remembers the last cookie
 * value it verified on a connection and skips the HMAC for an equal value, so
 * these requests all share one. Whatever the connection sent before, each value
 * must be judged as if it came alone.
 */
test('cookies judged on one keep-alive connection: every value on its own merits', async (t) => {
  const { gw, results } = await stickyGateway(t, ['a', 'b', 'c'], { secret: [SECRET, OLD_SECRET], maxAge: 600 })
  let connections = 0
  gw.app.server.on('connection', () => { connections++ })
  const client = new Pool(gw.url, { connections: 1 })
  t.teardown(async () => { await client.close() })
  const send = async (cookie: string): Promise<{ servedBy: string, setCookie: string | undefined }> => {
    const res = await client.request({ path: '/x', method: 'GET', headers: { cookie: `lb_main=${cookie}` } })
    await res.body.dump()
    t.equal(res.statusCode, 200)
    const set = res.headers['set-cookie']
    const served = res.headers['x-served-by']
    return { servedBy: String(served), setCookie: set === undefined ? undefined : parseSetCookie(Array.isArray(set) ? set[0] : set).value }
  }
  const current = signer({ secret: SECRET, maxAge: 600 })
  const old = signer({ secret: OLD_SECRET, maxAge: 600 })
  const forB = current.codec.encode('b', now() + 300)
  const flip = (s: string): string => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A')

  for (let i = 0; i < 3; i++) t.same(await send(forB), { servedBy: 'b', setCookie: undefined }, 'a valid cookie, again and again')

  // The same length as the value verified just before, one signature character apart.
  const forged = await send(flip(forB))
  t.equal(results.at(-1), 'rejected', 'a forged value right after a valid one is rejected')
  t.not(forged.setCookie, undefined, '...and replaced by a new cookie')
  t.same(await send(forB), { servedBy: 'b', setCookie: undefined }, 'the valid value still holds')

  const forC = current.codec.encode('c', now() + 300)
  t.same(await send(forC), { servedBy: 'c', setCookie: undefined }, 'another valid value on the same connection')
  t.same(await send(forB), { servedBy: 'b', setCookie: undefined }, 'and back')

  // Signed with the old secret: honoured and re-signed with the current one, every time it comes.
  const byOld = old.codec.encode('a', now() + 300)
  for (let i = 0; i < 2; i++) {
    const res = await send(byOld)
    t.equal(res.servedBy, 'a', 'a cookie of the old secret is honoured')
    t.ok(res.setCookie?.startsWith('a.') === true && res.setCookie !== byOld, '...and re-signed with the current secret')
  }

  // A value that expires while its connection lasts is refused once it has expired.
  const soon = current.codec.encode('c', now() + 1)
  t.same(await send(soon), { servedBy: 'c', setCookie: undefined }, 'valid before its expiry')
  await until(() => now() >= parseInt(soon.split('.')[1], 36), 5000, 'the cookie to expire')
  await send(soon)
  t.equal(results.at(-1), 'expired', 'the same value after its expiry is refused as expired')

  t.equal(connections, 1, 'every request went over one connection')
})
