import { test } from 'tap'
import { DemoUpstream, startUpstreams } from '../helpers/demo-upstream'
import { Client, count, startGateway, until } from '../helpers/gateway'
import type { PolicyChange } from '../../lib/pool/policy'
import type { TransitionEvent } from '../../lib/health/monitor'

test('switching a live pool from round-robin to consistent-hash under load drops no request, and the next requests follow the new algorithm', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', hashKey: { header: 'x-user' }, targets: ups.map((u) => ({ url: u.url, id: u.id })) } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const changes: PolicyChange[] = []
  pool.on('configure', (c) => changes.push(c))

  const statuses: number[] = []
  let switched = false
  const load = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; i < 60; i++) {
      if (w === 0 && i === 20) {
        pool.configure({ algorithm: 'consistent-hash' })
        switched = true
      }
      statuses.push((await client.send(gw.url + `/load/${w}/${i}`, { headers: { 'x-user': `u${w}` } })).status)
    }
  })
  await Promise.all(load)
  t.ok(switched)
  t.equal(statuses.length, 480)
  t.same(count(statuses.map(String)), { 200: 480 }, 'every request under the switch was answered 200')
  t.equal(pool.inFlight, 0, 'nothing left in flight')
  t.equal(pool.options.algorithm, 'consistent-hash')
  t.same(changes.map((c) => c.changed), [['algorithm']], "one 'configure' event naming what changed")

  // Round robin would rotate; the ring keeps each user on one target.
  for (const user of ['alice', 'bob', 'carol', 'dave']) {
    const served = new Set<string | undefined>()
    for (let i = 0; i < 6; i++) served.add((await client.send(gw.url + '/x', { headers: { 'x-user': user } })).servedBy)
    t.equal(served.size, 1, `${user} stays on one target`)
  }
  pool.configure({ algorithm: 'round-robin' })
  const rotation = []
  for (let i = 0; i < 6; i++) rotation.push((await client.send(gw.url + '/x', { headers: { 'x-user': 'alice' } })).servedBy)
  t.equal(new Set(rotation).size, 3, 'back to round robin: one user rotates over the three targets')
})

test('a bad partial throws FST_LB_INVALID_OPTION and changes nothing', async (t) => {
  const [a, b] = await startUpstreams(['a', 'b'])
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', timeout: 5000, targets: [{ url: a.url, id: 'a' }, { url: b.url, id: 'b' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await a.stop(); await b.stop() })
  const pool = gw.app.lb.pool('main')
  const before = pool.options
  let events = 0
  pool.on('configure', () => { events++ })
  const bad: Array<[unknown, RegExp]> = [
    [{ algorithm: 'fastest' }, /pool "main": algorithm = "fastest" \(must be one of/],
    // The timeout is fine; the retry is not: neither applies.
    [{ timeout: 100, retry: { attempts: -1 } }, /pool "main": retry\.attempts = -1/],
    [{ algorithm: 'consistent-hash', tableSize: 10 }, /pool "main": tableSize = 10 \(must be a prime number\)/],
    [{ targets: ['http://127.0.0.1:1'] }, /pool "main": targets = \["http:\/\/127\.0\.0\.1:1"\] \(is set at startup: configure\(\) does not change it\)/],
    [{ mirror: { pool: 'x' } }, /pool "main": mirror = .* \(is set at startup/],
    [{ algorthm: 'random' }, /pool "main": algorthm = "random" \(is not a pool option\)/],
    ['round-robin', /pool "main": configure\(\) = "round-robin" \(must be an object of pool options\)/]
  ]
  for (const [partial, message] of bad) {
    // @ts-expect-error -- what a caller without types could pass
    const err = (() => { try { pool.configure(partial) } catch (e) { return e as Error & { code: string } } })()
    t.equal(err?.code, 'FST_LB_INVALID_OPTION', `refused: ${JSON.stringify(partial)}`)
    t.match(err?.message, message)
  }
  t.equal(pool.options, before, 'the options are those of before')
  t.equal(events, 0, 'no event')
  t.same(count(await Promise.all(Array.from({ length: 4 }, async () => (await client.send(gw.url + '/x')).servedBy ?? ''))), { a: 2, b: 2 }, 'still round robin')
  t.same(pool.configure({ algorithm: 'round-robin' }).changed, [], 'a partial that changes nothing changes nothing')
  t.equal(events, 0)
})

test('health checks switch from /health to /ready keeping each target’s state, and follow the new check from then on', async (t) => {
  const [a, b, c] = await startUpstreams(['a', 'b', 'c'])
  for (const u of [a, b, c]) u.log = []
  c.mode = 'error'
  const gw = await startGateway({
    pools: {
      main: {
        algorithm: 'round-robin',
        targets: [a, b, c].map((u) => ({ url: u.url, id: u.id })),
        healthCheck: { path: '/health', interval: 50, jitter: 0, healthyThreshold: 2, unhealthyThreshold: 2 }
      }
    }
  })
  t.teardown(async () => { await gw.close(); await a.stop(); await b.stop(); await c.stop() })
  const pool = gw.app.lb.pool('main')
  const state = (): Record<string, boolean> => Object.fromEntries(pool.targets.map((x) => [x.id, x.healthy]))
  await until(() => !(pool.get('c')?.healthy ?? true) && a.healthHits > 0 && b.healthHits > 0, 5000, 'the first checks')
  t.same(state(), { a: true, b: true, c: false })

  const transitions: TransitionEvent[] = []
  gw.app.lb.health.on('transition', (e) => transitions.push(e))
  pool.configure({ healthCheck: { path: '/ready', interval: 50, jitter: 0, healthyThreshold: 3, unhealthyThreshold: 2 } })
  t.same(state(), { a: true, b: true, c: false }, 'right after the change every target is in the state it was')
  const healthAt = [a, b, c].map((u) => u.healthHits)
  const readies = (u: DemoUpstream): number => (u.log ?? []).filter((p) => p === '/ready').length
  await until(() => [a, b, c].every((u) => readies(u) >= 3), 5000, 'three /ready checks of each target')
  t.same(state(), { a: true, b: true, c: false }, 'a passing /ready keeps a and b healthy, a failing one keeps c unhealthy')
  t.same(transitions, [], 'no transition: the new check started from the state of the old')
  t.ok([a, b, c].every((u, i) => u.healthHits <= healthAt[i] + 1), '/health is checked no more (one check in flight at the change at most)')

  c.mode = 'ok'
  await until(() => pool.get('c')?.healthy === true, 5000, 'c healthy by /ready')
  t.ok(readies(c) >= 3)
  t.same(transitions.map((e) => `${e.id} ${e.to}`), ['c healthy'], 'c comes back through the new check and its threshold')
  t.match(transitions[0].reason, /3 consecutive passing checks/)

  pool.configure({ healthCheck: false })
  c.mode = 'error'
  const at = readies(c)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.ok(readies(c) <= at + 1, 'without checks nothing is checked')
  t.same(state(), { a: true, b: true, c: true }, 'and nothing keeps a target out')
})

test('timeouts, limits, the queue and affinity change for the next requests; those in flight keep theirs', async (t) => {
  const slow = await new DemoUpstream('slow').start()
  slow.mode = 'slow'
  slow.delayMs = 300
  const gw = await startGateway({ pools: { main: { targets: [{ url: slow.url, id: 'slow' }], timeout: 60_000 } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await slow.stop() })
  const pool = gw.app.lb.pool('main')

  const first = client.send(gw.url + '/first')
  await until(() => slow.active === 1, 5000, 'the first request upstream')
  pool.configure({ timeout: 100 })
  const second = await client.send(gw.url + '/second')
  t.equal(second.status, 504, 'a new request has the new timeout')
  t.notMatch(second.text, /127\.0\.0\.1/)
  t.equal((await first).status, 200, 'the request in flight kept the timeout it started with')

  pool.configure({ timeout: 60_000, maxInFlight: 1 })
  const held = client.send(gw.url + '/held')
  await until(() => pool.inFlight === 1, 5000, 'one in flight')
  const refused = await client.send(gw.url + '/refused')
  t.equal(refused.status, 503, 'maxInFlight 1: a second request is refused at once')
  t.match(JSON.parse(refused.text), { code: 'FST_LB_OVERLOADED' })
  pool.configure({ queue: { size: 5, timeout: 5000 } })
  const queued = client.send(gw.url + '/queued')
  await until(() => pool.waiting?.length === 1, 5000, 'the request queued')
  t.equal((await held).status, 200)
  t.equal((await queued).status, 200, 'with a queue it waits for the slot')

  pool.configure({ affinity: { secret: 'a-secret-of-sixteen-bytes' } })
  const pinned = await client.send(gw.url + '/pin')
  t.match(String(pinned.headers['set-cookie']), /^lb_main=/, 'affinity switched on: the answer pins the client')
  pool.configure({ affinity: undefined, maxInFlight: undefined, queue: undefined })
  const free = await client.send(gw.url + '/free')
  t.equal(free.headers['set-cookie'], undefined, 'an option set to undefined goes back to its default (no affinity)')
  t.equal(pool.waiting, null)
  t.equal(pool.inFlight, 0)
})

test('a new retry policy holds for the next requests', async (t) => {
  const [bad, good] = await startUpstreams(['bad', 'good'])
  bad.status = 503
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: [{ url: bad.url, id: 'bad' }, { url: good.url, id: 'good' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await bad.stop(); await good.stop() })
  const pool = gw.app.lb.pool('main')
  const statuses = async (): Promise<number[]> => await Promise.all([0, 1, 2, 3].map(async (i) => (await client.send(gw.url + `/r${i}`)).status))
  t.same(await statuses(), [200, 200, 200, 200], 'the default policy retries the 503 on the other target')
  pool.configure({ retry: false })
  t.same(count((await statuses()).map(String)), { 200: 2, 503: 2 }, 'without retries the 503 reaches the client')
  pool.configure({ retry: { attempts: 1, statuses: [503] } })
  t.same(await statuses(), [200, 200, 200, 200], 'retries again')
  t.equal(pool.inFlight, 0)
})
