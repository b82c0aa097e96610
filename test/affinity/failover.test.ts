import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { CookieJar } from '../helpers/cookie-jar'
import { refusedUrl, sequence, until } from '../helpers/gateway'
import { serve, stickyGateway, stickyPool, tally } from './fixtures'

/** The target id a jar's affinity cookie names. */
function pinnedTo (jar: CookieJar): string | undefined {
  return jar.cookies.get('lb_main')?.split('.')[0]
}

test('the pinned upstream goes down: the request fails over and the cookie follows', async (t) => {
  const { ups, gw, jar, results } = await stickyGateway(t, ['a', 'b', 'c'])
  const alice = jar()
  t.same(await sequence(alice, gw.url + '/x', 3), ['a', 'a', 'a'])
  await ups[0].stop()
  const moved = await alice.send(gw.url + '/x')
  t.equal(moved.status, 200, 'the client sees no error')
  t.not(moved.servedBy, 'a')
  t.equal(alice.last.length, 1, 'a new cookie…')
  t.equal(pinnedTo(alice), moved.servedBy, '…for the target that answered')
  t.same(await sequence(alice, gw.url + '/x', 10), Array(10).fill(moved.servedBy), 'and the client stays there')
  t.same(tally(results), { miss: 1, hit: 13, reassigned: 1 }, 'the failed-over request counts as a hit, then a reassignment')
})

test('a new client whose first target refuses gets the cookie of the one that answered, once', async (t) => {
  const ups = await startUpstreams(['b'])
  const dead = await refusedUrl()
  const pool = stickyPool(ups)
  pool.targets = [{ url: dead, id: 'a-dead' }, ...pool.targets ?? []]
  const { gw, client } = await serve(t, ups, { pools: { main: pool } })
  const alice = new CookieJar(client)
  const res = await alice.send(gw.url + '/x')
  t.equal(res.servedBy, 'b')
  t.equal(alice.last.length, 1, 'one Set-Cookie, not one per try')
  t.equal(pinnedTo(alice), 'b')
  t.same(gw.app.lb.pool('main').affinity?.counts, { hit: 0, miss: 1, reassigned: 0, rejected: 0, expired: 0 }, 'a new client, not a moved one')
})

test('a target taken out by health checks is not tried: its clients are reassigned up front', async (t) => {
  const { ups, gw, pool, jar, results } = await stickyGateway(t, ['a', 'b', 'c'])
  const alice = jar()
  t.same(await sequence(alice, gw.url + '/x', 2), ['a', 'a'])
  const a = pool.get('a')
  if (a === undefined) throw new Error('target a expected')
  pool.disable('a')
  const hitsBefore = ups[0].hits
  const moved = await alice.send(gw.url + '/x')
  t.equal(moved.status, 200)
  t.not(moved.servedBy, 'a')
  t.equal(ups[0].hits, hitsBefore, 'the unhealthy target saw nothing')
  t.equal(pinnedTo(alice), moved.servedBy)
  t.same(results.slice(-1), ['reassigned'])

  pool.enable('a')
  t.same(await sequence(alice, gw.url + '/x', 5), Array(5).fill(moved.servedBy), 'no flapping back when it recovers')
})

test('a draining target keeps its sticky clients until it leaves; new clients never reach it', async (t) => {
  const { ups, gw, pool, jar, results } = await stickyGateway(t, ['a', 'b', 'c'])
  const alice = jar()
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'a')
  ups[0].mode = 'slow'
  ups[0].delayMs = 300
  // One request in flight on a, so draining does not finish at once.
  const first = alice.send(gw.url + '/x')
  await until(() => ups[0].active === 1, 5000, 'a request in flight on a')
  const drained = pool.drain('a')
  const second = alice.send(gw.url + '/x')
  const newcomers = await Promise.all([0, 1, 2, 3].map(async () => (await new CookieJar(alice.client).send(gw.url + '/x')).servedBy))
  t.notOk(newcomers.includes('a'), `new clients avoid the draining target: ${newcomers.join(',')}`)
  t.equal((await first).servedBy, 'a')
  t.equal((await second).servedBy, 'a', 'the sticky client still reaches it while it drains')
  t.equal(alice.last.length, 0, 'and keeps its cookie')
  await drained
  t.equal(pool.get('a'), undefined, 'gone once idle')
  const after = await alice.send(gw.url + '/x')
  t.not(after.servedBy, 'a')
  t.equal(pinnedTo(alice), after.servedBy, 'then the client is reassigned')
  t.same(tally(results), { miss: 5, hit: 2, reassigned: 1 })
})

test('strict: a pinned target that is down answers 503 and keeps the client for when it returns', async (t) => {
  const { ups, gw, pool, jar, results } = await stickyGateway(t, ['a', 'b'], { strict: true })
  const alice = jar()
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'a')
  const cookie = alice.cookies.get('lb_main')
  const a = pool.get('a')
  if (a === undefined) throw new Error('target a expected')
  pool.disable('a')
  const refused = await alice.send(gw.url + '/x')
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.same(JSON.parse(refused.text), {
    statusCode: 503, code: 'FST_LB_NO_TARGET', error: 'Service Unavailable', message: 'No target of pool "main" is available'
  })
  t.notOk(refused.text.includes(String(ups[0].port)), 'no address in the answer')
  t.equal(alice.last.length, 0, 'the cookie is left alone')
  t.equal(ups[1].hits, 0, 'nothing went to the other target')
  t.equal(pool.noTarget, 1, 'counted as a request without a target')

  pool.enable('a')
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'a')
  t.equal(alice.cookies.get('lb_main'), cookie)
  // A new client is balanced as usual, strict or not.
  t.equal((await new CookieJar(alice.client).send(gw.url + '/x')).servedBy, 'b')
  t.same(tally(results), { miss: 2, hit: 1 }, 'the refusal is not an affinity result')
})

test('strict: a pinned upstream that refuses connections is not failed over', async (t) => {
  const { ups, gw, jar } = await stickyGateway(t, ['a', 'b'], { strict: true })
  const alice = jar()
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'a')
  await ups[0].stop()
  const res = await alice.send(gw.url + '/x')
  t.equal(res.status, 502)
  t.equal(JSON.parse(res.text).code, 'FST_LB_BAD_GATEWAY')
  t.notOk(res.text.includes(String(ups[0].port)), 'no address in the answer')
  t.equal(ups[1].hits, 0, 'the other target never saw the pinned client')
  t.equal(alice.last.length, 0)

  // Not pinned yet: an unpinned client's request still fails over.
  const bob = jar()
  bob.cookies.set('unrelated', '1')
  const served = await sequence(bob, gw.url + '/x', 3)
  t.same(served, ['b', 'b', 'b'])
})

test('strict: a pinned target that left the pool answers 503 once and clears the cookie', async (t) => {
  const { gw, pool, jar, results } = await stickyGateway(t, ['a', 'b'], { strict: true })
  const alice = jar()
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'a')
  await pool.remove('a')
  const refused = await alice.send(gw.url + '/x')
  t.equal(refused.status, 503)
  t.same(alice.last.map((c) => [c.name, c.value, c.attributes['max-age']]), [['lb_main', '', '0']], 'the cookie is cleared')
  t.equal(alice.cookies.size, 0)
  const next = await alice.send(gw.url + '/x')
  t.equal(next.servedBy, 'b', 'the next request starts over')
  t.equal(pinnedTo(alice), 'b')
  t.same(tally(results), { miss: 2 })
})

test('a draining target that turns unhealthy loses its sticky clients at once', async (t) => {
  const { ups, gw, pool, jar, results } = await stickyGateway(t, ['a', 'b'])
  const alice = jar()
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'a')
  // A request that never ends keeps a draining.
  ups[0].mode = 'hang'
  const controller = new AbortController()
  const hanging = jar()
  hanging.cookies.set('lb_main', alice.cookies.get('lb_main') ?? '')
  const held = hanging.send(gw.url + '/x', { signal: controller.signal }).catch(() => null)
  // Held once the upstream has it: counted in flight at the gateway, it could still reach the upstream after the mode changes back.
  await until(() => pool.get('a')?.inFlight === 1 && ups[0].active === 1, 5000, 'a request held on a')
  const drained = pool.drain('a')
  ups[0].mode = 'ok'
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'a', 'draining and healthy: still sticky')

  const a = pool.get('a')
  if (a === undefined) throw new Error('target a expected')
  a.healthy = false
  pool.refresh(a)
  const moved = await alice.send(gw.url + '/x')
  t.equal(moved.servedBy, 'b', 'draining and unhealthy: reassigned')
  t.equal(pinnedTo(alice), 'b')
  controller.abort()
  await held
  await drained
  t.same(tally(results), { miss: 1, hit: 2, reassigned: 1 })
})
