import { test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseSetCookie } from '../helpers/cookie-jar'
import { refusedUrl } from '../helpers/gateway'
import { SECRET, serve, tally } from './fixtures'
import type { AffinityResult } from '../../lib/affinity/affinity'

/** Set-Cookie headers a browser stores under the pool's cookie name (RFC 6265 section 5.2 trims around the name). */
const SPOOFS = ['lb_main =evil; Path=/', 'lb_main\t=evil; Path=/', ' lb_main=evil; Path=/', 'lb_main \t =evil']
/** A nameless cookie is sent back as its bare value: this one comes back as `lb_main=evil`. */
const NAMELESS = '=lb_main=evil; Path=/'
/** Cookies of other names, the case-sensitive `LB_MAIN` and the nameless `lb_main` (sent back without '=') among them. */
const OTHERS = ['other=1; Path=/', 'LB_MAIN=1; Path=/', 'lb_main; Path=/', 'lb_mainx=1']

/** The name under which a browser sends a Set-Cookie header's cookie back (RFC 6265bis section 5.6 and 5.7.3). */
function sentBackAs (header: string): string {
  const pair = header.split(';')[0]
  if (!pair.includes('=')) return ''
  const { name, value } = parseSetCookie(header)
  return name !== '' ? name : parseSetCookie(value).name
}

test("an upstream's cookie of the pool's name with whitespace around the name never reaches the client; its other cookies pass", async (t) => {
  const upstream = createServer((_request, response) => {
    response.setHeader('set-cookie', [...SPOOFS, OTHERS[0], NAMELESS, ...OTHERS.slice(1)])
    response.setHeader('content-type', 'text/plain')
    response.end('ok')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => { upstream.close() })
  const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const { gw, client } = await serve(t, [], {
    pools: {
      main: { targets: [{ url: target, id: 'u' }], affinity: { secret: SECRET } },
      // Round robin over ids in order tries the refused target first: the cookie follows to the one that answered.
      failover: { algorithm: 'round-robin', targets: [{ url: await refusedUrl(), id: 'down' }, { url: target, id: 'u' }], affinity: { secret: SECRET, cookie: 'lb_main' } }
    }
  }, (app) => {
    app.get('/failover/*', { config: { upstream: 'failover' } }, app.lb.forward)
    app.get('/*', { config: { upstream: 'main' } }, app.lb.forward)
  })
  const results: AffinityResult[] = []
  gw.app.lb.pool('main').on('affinity', (result: AffinityResult) => results.push(result))

  const setCookies = async (cookie?: string, path = '/x'): Promise<string[]> => {
    const res = await client.send(gw.url + path, cookie === undefined ? {} : { headers: { cookie } })
    t.equal(res.status, 200)
    const raw = res.headers['set-cookie'] ?? []
    return Array.isArray(raw) ? raw : [raw]
  }

  const first = await setCookies()
  const ours = first.filter((h) => sentBackAs(h) === 'lb_main')
  t.equal(ours.length, 1, 'a new client: one cookie of the pool\'s name')
  t.match(ours[0], /^lb_main=u\.0\.[A-Za-z0-9_-]{32}; Path=\/; HttpOnly; SameSite=Lax$/, 'the gateway\'s')
  t.same(first.filter((h) => sentBackAs(h) !== 'lb_main'), OTHERS, 'the upstream\'s other cookies, unchanged')
  t.equal(first[first.length - 1], ours[0], 'the gateway\'s comes last')

  const pinned = ours[0].split(';')[0]
  const again = await setCookies(`${pinned}; other=1`)
  t.same(again, OTHERS, 'a returning client: no cookie of the pool\'s name, the upstream\'s others unchanged')
  t.same(tally(results), { miss: 1, hit: 1 }, 'the client stayed pinned')

  const movedOn = await setCookies(undefined, '/failover/x')
  t.same(movedOn.filter((h) => sentBackAs(h) === 'lb_main').map((h) => h.split('.')[0]), ['lb_main=u'], 'after failover: one cookie of the pool\'s name, for the target that answered')
  t.same(movedOn.filter((h) => sentBackAs(h) !== 'lb_main'), OTHERS, 'and the upstream\'s other cookies, unchanged')
})
