import { test } from 'tap'
import Fastify from 'fastify'
import lb from '../../lib/index'
import { DemoUpstream, startUpstreams } from '../helpers/demo-upstream'
import { Client, refusedUrl, sequence, startGateway, until } from '../helpers/gateway'
import { HealthLog, LogLines } from '../helpers/health'
import { nextDelay } from '../../lib/health/monitor'

const FAST = { interval: 30, jitter: 0, timeout: 500 }

test('unhealthy after exactly unhealthyThreshold failed checks, healthy after exactly healthyThreshold passing ones', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const gw = await startGateway({
    pools: {
      main: {
        algorithm: 'round-robin',
        targets: ups.map((u) => ({ url: u.url, id: u.id })),
        healthCheck: { ...FAST, unhealthyThreshold: 3, healthyThreshold: 2 }
      }
    }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const log = new HealthLog(gw.app.lb.health, 'a')
  await until(() => log.checks.length >= 2, 5000, 'two checks')
  t.same(log.checks.slice(0, 2).map((c) => [c.ok, c.healthy]), [[true, true], [true, true]], 'a healthy upstream passes')
  t.same(log.transitions, [], 'passing checks change nothing')

  ups[0].mode = 'error'
  await until(() => log.transitions.length >= 1, 5000, 'a turning unhealthy')
  const failing = log.from(false).slice(0, 3)
  t.same(failing.map((c) => c.healthy), [true, true, false], 'the third failed check, not an earlier one, turns it unhealthy')
  t.equal(failing[2].error, 'status 503')
  t.match(log.transitions[0], { id: 'a', from: 'healthy', to: 'unhealthy', reason: '3 consecutive failed checks, last: status 503' })
  t.same(pool.eligible.map((x) => x.id), ['b'])
  t.equal(pool.get('a')!.state, 'unhealthy')
  t.same(await sequence(client, gw.url + '/x', 4), ['b', 'b', 'b', 'b'], 'no request reaches the unhealthy target')

  const mark = log.checks.length
  ups[0].mode = 'ok'
  await until(() => log.transitions.length >= 2, 5000, 'a turning healthy')
  const passing = log.from(true, mark).slice(0, 2)
  t.same(passing.map((c) => c.healthy), [false, true], 'the second passing check turns it healthy')
  t.match(log.transitions[1], { from: 'unhealthy', to: 'healthy', reason: '2 consecutive passing checks' })
  t.same(pool.eligible.map((x) => x.id), ['a', 'b'])
  t.same((await sequence(client, gw.url + '/x', 4)).sort(), ['a', 'a', 'b', 'b'])
  t.equal(pool.get('a')!.lastCheck?.ok, true)
})

test('before its first check a target is healthy; the first check alone decides', async (t) => {
  const up = await new DemoUpstream('up').start()
  const dead = await refusedUrl()
  const app = Fastify()
  await app.register(lb, {
    pools: { main: { targets: [{ url: up.url, id: 'up' }, { url: dead, id: 'dead' }], healthCheck: { ...FAST, unhealthyThreshold: 3 } } }
  })
  t.teardown(async () => { await app.close(); await up.stop() })
  const pool = app.lb.pool('main')
  t.same(pool.targets.map((x) => [x.id, x.healthy, x.lastCheck]), [['dead', true, null], ['up', true, null]], 'healthy and unchecked before ready')
  t.same(pool.eligible.map((x) => x.id), ['dead', 'up'])
  const log = new HealthLog(app.lb.health, 'dead')
  await app.ready()
  await until(() => log.checks.length >= 1, 5000, 'first check')
  t.same(log.checks[0], { ok: false, error: 'connection refused', healthy: false }, 'one refused check is enough at start')
  t.match(log.transitions[0], { from: 'healthy', to: 'unhealthy', reason: 'first check failed: connection refused' })
  t.same(pool.eligible.map((x) => x.id), ['up'])
})

test("initialState 'unhealthy': no traffic until the first passing check", async (t) => {
  const up = await new DemoUpstream('up').start()
  const app = Fastify()
  await app.register(lb, { pools: { main: { targets: [{ url: up.url, id: 'up' }], healthCheck: { ...FAST, initialState: 'unhealthy', healthyThreshold: 3 } } } })
  t.teardown(async () => { await app.close(); await up.stop() })
  const pool = app.lb.pool('main')
  t.equal(pool.get('up')!.healthy, false)
  t.same(pool.eligible, [], 'nothing eligible before the first check')
  const log = new HealthLog(app.lb.health, 'up')
  await app.ready()
  await until(() => log.checks.length >= 1, 5000, 'first check')
  t.same(log.checks[0], { ok: true, error: undefined, healthy: true }, 'one passing check is enough at start')
  t.same(pool.eligible.map((x) => x.id), ['up'])
})

test('TCP checks: a stopped upstream turns unhealthy, and healthy again once it listens on the same port', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const gw = await startGateway({
    pools: { main: { targets: ups.map((u) => ({ url: u.url, id: u.id })), healthCheck: { type: 'tcp', ...FAST, unhealthyThreshold: 2, healthyThreshold: 2 } } }
  })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const log = new HealthLog(gw.app.lb.health, 'a')
  await until(() => log.checks.length >= 1, 5000, 'first check')
  const port = ups[0].port
  await ups[0].stop()
  await until(() => log.transitions.length >= 1, 5000, 'a turning unhealthy')
  t.same(log.from(false).slice(0, 2).map((c) => [c.error, c.healthy]), [['connection refused', true], ['connection refused', false]])
  const mark = log.checks.length
  await ups[0].start(port)
  t.equal(ups[0].port, port, 'the upstream is back on its port')
  await until(() => log.transitions.length >= 2, 5000, 'a turning healthy')
  t.same(log.from(true, mark).slice(0, 2).map((c) => c.healthy), [false, true])
  t.equal(ups[0].healthHits, 0, 'a TCP check sends no HTTP request')
})

test('HTTP check details: timeout, body match, Host header, method, statuses, base path', async (t) => {
  const up = await new DemoUpstream('u').start()
  const hang = await new DemoUpstream('h').start()
  hang.mode = 'hang'
  const probe = { ...FAST, path: '/probe' }
  const gw = await startGateway({
    pools: {
      timeout: { targets: [{ url: hang.url, id: 'timeout' }], healthCheck: { ...probe, timeout: 50 } },
      host: { targets: [{ url: up.url, id: 'host' }], healthCheck: { ...probe, method: 'OPTIONS', host: 'svc.internal', body: /"method":"OPTIONS".*"host":"svc\.internal"/g } },
      mismatch: { targets: [{ url: up.url, id: 'mismatch' }], healthCheck: { ...probe, body: 'no such text' } },
      status: { targets: [{ url: up.url, id: 'status' }], healthCheck: { ...probe, expectedStatuses: [[201, 204], 404] } },
      base: { targets: [{ url: up.url + '/api', id: 'base' }], healthCheck: { ...probe, body: '"url":"/api/probe"' } }
    }
  }, () => {})
  t.teardown(async () => { await gw.close(); await up.stop(); await hang.stop() })
  const logs = Object.fromEntries(['timeout', 'host', 'mismatch', 'status', 'base'].map((id) => [id, new HealthLog(gw.app.lb.health, id)]))
  await until(() => Object.values(logs).every((l) => l.checks.length >= 3), 5000, 'three checks each')
  const firsts = Object.fromEntries(Object.entries(logs).map(([id, l]) => [id, l.checks.slice(0, 3).map((c) => c.error ?? 'ok')]))
  t.same(firsts, {
    timeout: ['timeout', 'timeout', 'timeout'],
    host: ['ok', 'ok', 'ok'],
    mismatch: ['body mismatch', 'body mismatch', 'body mismatch'],
    status: ['status 200', 'status 200', 'status 200'],
    base: ['ok', 'ok', 'ok']
  }, 'a global RegExp passes every time, not every other time')
  t.equal([...gw.app.lb.health.monitors()].filter((m) => m.url.startsWith(up.url)).length, 4, 'one state machine per URL and check configuration')
})

test('a target shared by three pools is checked once per interval, and each change is logged once', async (t) => {
  const up = await new DemoUpstream('shared').start()
  const lines = new LogLines()
  const check = { ...FAST, interval: 40, unhealthyThreshold: 1, healthyThreshold: 1 }
  const pools = Object.fromEntries(['one', 'two', 'three'].map((name) => [name, { targets: [{ url: up.url, id: `${name}-t` }], healthCheck: check }]))
  const gw = await startGateway({ pools }, () => {}, { logger: { level: 'info', stream: lines } })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const health = gw.app.lb.health
  let checks = 0
  health.on('check', () => { checks++ })
  const monitors = [...health.monitors()]
  t.equal(monitors.length, 1, 'one state machine for the shared URL')
  t.equal(monitors[0].id, 'one-t', 'named after the first pool that registered the URL')
  const log = new HealthLog(health, 'one-t')
  await until(() => checks >= 3, 5000, 'three checks')
  up.mode = 'error'
  await until(() => log.transitions.length >= 1, 5000, 'unhealthy')
  const targets = ['one', 'two', 'three'].map((name) => gw.app.lb.pool(name).get(`${name}-t`)!)
  t.same(targets.map((x) => x.healthy), [false, false, false], 'every pool follows the shared state')
  t.same(targets.map((x) => gw.app.lb.pool(x.id.split('-')[0]).eligible.length), [0, 0, 0])
  up.mode = 'ok'
  await until(() => log.transitions.length >= 2, 5000, 'healthy again')
  await gw.close()
  t.ok(up.healthHits >= checks && up.healthHits <= checks + 1, `one request per check (${up.healthHits} requests, ${checks} checks)`)
  const changes = lines.lines.filter((l) => l.target === 'one-t' && typeof l.to === 'string')
  t.same(changes.map((l) => [l.from, l.to, l.level]), [['healthy', 'unhealthy', 40], ['unhealthy', 'healthy', 30]], 'each change logged once, at warn and info')
  t.match(changes[0], { target: 'one-t', reason: '1 consecutive failed checks, last: status 503' })
})

test('targets added at run time are checked; removed ones are no longer', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const gw = await startGateway({ pools: { main: { targets: [{ url: ups[0].url, id: 'a' }], healthCheck: FAST } } })
  t.teardown(async () => { await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  ups[1].mode = 'error'
  const log = new HealthLog(gw.app.lb.health, 'b')
  pool.add({ url: ups[1].url, id: 'b' })
  await until(() => log.checks.length >= 1, 5000, 'first check of the new target')
  t.equal(pool.get('b')!.healthy, false, 'its first check counts at once')
  await pool.remove('b')
  t.same([...gw.app.lb.health.monitors()].map((m) => m.id), ['a'], 'its state machine is gone')
  const hits = ups[1].healthHits
  const seen = log.checks.length
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(ups[1].healthHits, hits, 'no more checks reach it')
  t.equal(log.checks.length, seen)
})

test('intervals are drawn within interval x (1 +- jitter), less the time the last check took', async (t) => {
  t.same([0, 0.5, 1].map((r) => nextDelay(1000, 0.1, 0, () => r)), [900, 1000, 1100])
  t.equal(nextDelay(1000, 0.1, 300, () => 0.5), 700)
  t.equal(nextDelay(1000, 0.1, 5000, () => 0.5), 0, 'a check slower than the interval is followed at once, never earlier')
})

test('a slow check never overlaps the next one', async (t) => {
  const up = await new DemoUpstream('slow').start()
  up.mode = 'hang'
  const gw = await startGateway({ pools: { main: { targets: [{ url: up.url, id: 'slow' }], healthCheck: { path: '/probe', interval: 10, timeout: 60 } } } }, () => {})
  t.teardown(async () => { await gw.close(); await up.stop() })
  const log = new HealthLog(gw.app.lb.health, 'slow')
  let most = 0
  await until(() => {
    // hits counts checks that reached the upstream; log.checks those that ended.
    most = Math.max(most, up.hits - log.checks.length)
    return log.checks.length >= 4
  }, 5000, 'four timed-out checks')
  t.equal(most, 1, 'at most one check in flight at a time')
  t.same(log.checks.slice(0, 4).map((c) => c.error), ['timeout', 'timeout', 'timeout', 'timeout'])
})
