import { test, type Test } from 'tap'
import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import { Client, count, sequence, startGateway, until, type Answer, type Gateway } from '../helpers/gateway'
import { startupError } from '../helpers/startup'
import { LogLines } from '../helpers/health'
import { sampleValue } from '../helpers/prom-text'
import type { LbOptions } from '../../lib/options/resolve'
import type { AdminChange } from '../../lib/admin/changes'
import type { StatusReport } from '../../lib/observability/status-report'

const TOKEN = 'Bearer s3cret-admin-token'

/** The guard docs/admin.md shows: a bearer token compared in constant time. */
async function requireToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const given = Buffer.from(request.headers.authorization ?? '')
  const expected = Buffer.from(TOKEN)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    await reply.code(401).header('www-authenticate', 'Bearer').send({ statusCode: 401, error: 'Unauthorized', message: 'token required' })
  }
}

interface Setup {
  ups: DemoUpstream[]
  gw: Gateway
  client: Client
  lines: LogLines
  events: AdminChange[]
  /** An admin call with the token (or without, `auth: false`), JSON in and out. */
  call: (method: string, path: string, body?: unknown, auth?: boolean) => Promise<Answer & { json: Record<string, unknown> }>
  status: () => Promise<StatusReport>
  metrics: () => Promise<string>
  /** The log lines of admin changes. */
  changeLines: () => Array<Record<string, unknown>>
}

/** Upstreams a, b, c behind a gateway whose pool `main` balances them by round robin, with the admin API guarded by a token. */
async function setUp (t: Test, options: Partial<LbOptions> = {}, ids = ['a', 'b', 'c']): Promise<Setup> {
  const ups = await startUpstreams(ids)
  const lines = new LogLines()
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', targets: ups.map((u) => ({ url: u.url, id: u.id })) } },
    admin: { onRequest: requireToken },
    ...options
  }, undefined, { logger: { level: 'info', stream: lines } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const events: AdminChange[] = []
  gw.app.lb.on('admin', (change) => events.push(change))
  const call: Setup['call'] = async (method, path, body, auth = true) => {
    const headers: Record<string, string> = {}
    if (auth) headers.authorization = TOKEN
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await client.send(gw.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    return { ...res, json: JSON.parse(res.text) as Record<string, unknown> }
  }
  return {
    ups,
    gw,
    client,
    lines,
    events,
    call,
    status: async () => JSON.parse((await client.send(gw.url + '/lb/status')).text) as StatusReport,
    metrics: async () => (await client.send(gw.url + '/metrics')).text,
    changeLines: () => lines.matching('fastify-lb: admin changed')
  }
}

const hits = (ups: DemoUpstream[]): Record<string, number> => Object.fromEntries(ups.map((u) => [u.id, u.hits]))

test('startup: without a guard the admin API fails, naming why; allowUnguarded starts it; bad values name the field', async (t) => {
  const pools = { main: { targets: ['http://127.0.0.1:1'] } }
  const unguarded = await startupError({ pools, admin: {} })
  t.equal(unguarded.code, 'FST_LB_INVALID_OPTION')
  t.match(unguarded.message, /pool "\(plugin\)": admin\.onRequest = undefined \(the admin API needs a guard: an onRequest hook that refuses unauthenticated calls, or allowUnguarded: true\)/)
  t.match((await startupError({ pools, admin: { allowUnguarded: false } })).message, /admin\.onRequest = undefined/)
  t.match((await startupError({ pools, admin: { onRequest: [] } })).message, /admin\.onRequest = \[\] \(the admin API needs a guard/, 'an empty list of guards is no guard')

  const bad: Array<[unknown, RegExp]> = [
    [{ onRequest: 'token' }, /admin\.onRequest = "token" \(must be an onRequest hook function\)/],
    [{ onRequest: [requireToken, 1] }, /admin\.onRequest\[1\] = 1 \(must be an onRequest hook function\)/],
    [{ onRequest: requireToken, prefix: '/lb/admin/' }, /admin\.prefix = "\/lb\/admin\/" \(must be a path of segments/],
    [{ onRequest: requireToken, prefix: '/lb/:x' }, /admin\.prefix = "\/lb\/:x"/],
    [{ allowUnguarded: 'yes' }, /admin\.allowUnguarded = "yes" \(must be a boolean\)/],
    [{ onRequest: requireToken, guard: true }, /admin\.guard = true \(is not an admin option\)/],
    ['on', /admin = "on" \(must be an object or false\)/],
    [true, /admin = true \(must be an object or false\)/]
  ]
  for (const [admin, message] of bad) {
    const err = await startupError({ pools, admin })
    t.equal(err.code, 'FST_LB_INVALID_OPTION', JSON.stringify(admin) ?? String(admin))
    t.match(err.message, message)
  }
  t.match((await startupError({ pools, admin: { onRequest: requireToken }, cluster: true })).message,
    /admin = .* \(is not available in cluster mode: a call would change only the worker that took it\)/)

  const s = await setUp(t, { admin: { allowUnguarded: true, prefix: '/ops/lb' } })
  const res = await s.call('GET', '/ops/lb/pools', undefined, false)
  t.equal(res.status, 200, 'allowUnguarded: true serves the routes without a guard')
  t.same((res.json.pools as Array<{ name: string }>).map((p) => p.name), ['main'])
  t.equal((await s.client.send(s.gw.url + '/lb/admin/pools')).servedBy, 'a', 'under its prefix only: other paths are the gateway\'s routes')
})

test('off by default: no admin route, and the status page has no changes', async (t) => {
  const ups = await startUpstreams(['a'])
  const gw = await startGateway({ pools: { main: { targets: [{ url: ups[0].url, id: 'a' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  const res = await client.send(gw.url + '/lb/admin/pools/main/targets/a', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"state":"disabled"}' })
  // Without the admin API the path is the gateway's catch-all route: it is forwarded like any other request.
  t.equal(res.servedBy, 'a')
  t.equal(gw.app.lb.pool('main').get('a')?.enabled, true)
  const report = JSON.parse((await client.send(gw.url + '/lb/status')).text) as StatusReport
  t.notOk('changes' in report)
})

test('the guard refuses calls without credentials, and nothing changes', async (t) => {
  const s = await setUp(t)
  const pool = s.gw.app.lb.pool('main')
  const calls: Array<[string, string, unknown]> = [
    ['GET', '/lb/admin/pools', undefined],
    ['GET', '/lb/admin/pools/main', undefined],
    ['PATCH', '/lb/admin/pools/main/targets/a', { weight: 5, state: 'disabled' }],
    ['PATCH', '/lb/admin/pools/main/targets/b', { state: 'draining' }],
    ['GET', '/lb/admin/splits', undefined],
    ['POST', '/lb/admin/pools/main/configure', { algorithm: 'random' }]
  ]
  for (const [method, path, body] of calls) {
    const res = await s.call(method, path, body, false)
    t.equal(res.status, 401, `${method} ${path} refused`)
    t.equal(res.headers['www-authenticate'], 'Bearer')
  }
  const wrong = await s.client.send(s.gw.url + '/lb/admin/pools/main/targets/a', { method: 'PATCH', headers: { authorization: 'Bearer s3cret-admin-tokem', 'content-type': 'application/json' }, body: '{"weight":9}' })
  t.equal(wrong.status, 401, 'a wrong token is refused too')
  t.same(pool.targets.map((x) => [x.id, x.weight, x.state]), [['a', 1, 'healthy'], ['b', 1, 'healthy'], ['c', 1, 'healthy']], 'every target as it was')
  t.equal(pool.options.algorithm, 'round-robin')
  t.same(s.events, [])
  t.same(s.changeLines(), [])
  t.same((await s.status()).changes, [])
})

test('reading: every pool with its targets, one pool, 404 for an unknown one', async (t) => {
  const s = await setUp(t)
  const all = await s.call('GET', '/lb/admin/pools')
  t.equal(all.status, 200)
  const [main] = all.json.pools as Array<{ name: string, algorithm: string, targets: Array<{ id: string, url: string, state: string, weight: number }> }>
  t.equal(main.name, 'main')
  t.equal(main.algorithm, 'round-robin')
  t.same(main.targets.map((x) => [x.id, x.url, x.state, x.weight]), s.ups.map((u) => [u.id, u.url, 'healthy', 1]))
  const one = await s.call('GET', '/lb/admin/pools/main')
  t.same(one.json.targets, main.targets, 'one pool reads as in the list')

  for (const path of ['/lb/admin/pools/nope', '/lb/admin/pools/nope/targets/a']) {
    const res = await s.call(path.endsWith('/a') ? 'PATCH' : 'GET', path, path.endsWith('/a') ? { weight: 2 } : undefined)
    t.equal(res.status, 404, path)
    t.same(res.json, { statusCode: 404, code: 'FST_LB_NOT_FOUND', error: 'Not Found', message: 'No pool "nope"' })
  }
  const target = await s.call('PATCH', '/lb/admin/pools/main/targets/zz', { weight: 2 })
  t.equal(target.status, 404)
  t.equal(target.json.message, 'No target "zz" in pool "main"')
  const split = await s.call('PUT', '/lb/admin/splits/%2Fapi%2F*', { weights: { main: 1 } })
  t.equal(split.status, 404)
  t.equal(split.json.message, 'No route "/api/*" splits its traffic')
})

test('a weight change: the next requests follow the new weights, /lb/status and the metrics show it at once, one log line and one event', async (t) => {
  const s = await setUp(t, {}, ['a', 'b'])
  const pool = s.gw.app.lb.pool('main')
  pool.configure({ algorithm: 'weighted-round-robin' })
  t.same(count(await sequence(s.client, s.gw.url + '/x', 4)), { a: 2, b: 2 }, 'even before')

  const res = await s.call('PATCH', '/lb/admin/pools/main/targets/a', { weight: 3 })
  t.equal(res.status, 200)
  t.match(res.json, { pool: 'main', target: { id: 'a', weight: 3, effectiveWeight: 3, state: 'healthy' } })
  const changes = res.json.changes as AdminChange[]
  t.match(changes, [{ kind: 'weight', pool: 'main', target: 'a', from: 1, to: 3 }])

  t.same(count(await sequence(s.client, s.gw.url + '/x', 8)), { a: 6, b: 2 }, '3:1 over the next 8 requests')
  const report = await s.status()
  t.equal(report.pools[0].targets.find((x) => x.id === 'a')?.weight, 3, '/lb/status shows the new weight')
  t.same(report.changes, changes, '/lb/status lists the change')
  t.equal(sampleValue(await s.metrics(), 'lb_target_weight', { pool: 'main', target: 'a' }), 3, 'lb_target_weight follows')

  t.same(s.events, changes, "one 'admin' event on app.lb")
  const logged = s.changeLines()
  t.equal(logged.length, 1, 'one log line')
  t.equal(logged[0].level, 30, 'at info')
  t.equal(logged[0].msg, 'fastify-lb: admin changed the weight of target "a" of pool "main" from 1 to 3')
  t.match(logged[0].lbChange, { kind: 'weight', pool: 'main', target: 'a', from: 1, to: 3 })
  t.type(logged[0].reqId, 'string', 'the line carries the request id of the call')

  const same = await s.call('PATCH', '/lb/admin/pools/main/targets/a', { weight: 3 })
  t.equal(same.status, 200)
  t.same(same.json.changes, [], 'the weight it has already: no change')
  t.equal(s.events.length, 1)
  t.equal(s.changeLines().length, 1, 'and no log line')

  for (const weight of [0, -1, 1.5, 1_000_001, '2']) {
    const bad = await s.call('PATCH', '/lb/admin/pools/main/targets/a', { weight })
    if (weight === '2') {
      // Fastify's validator coerces a numeric string, as for any route: it is a weight of 2.
      t.equal(bad.status, 200)
      continue
    }
    t.equal(bad.status, 400, `weight ${String(weight)} refused`)
    t.equal(bad.json.code, 'FST_ERR_VALIDATION')
    t.notOk(bad.text.includes('    at '), 'no stack trace')
  }
  t.equal(pool.get('a')?.weight, 2)
})

test('disable and enable: no request reaches a disabled target; the state shows in /lb/status and lb_target_enabled', async (t) => {
  const s = await setUp(t)
  const res = await s.call('PATCH', '/lb/admin/pools/main/targets/b', { state: 'disabled' })
  t.equal(res.status, 200)
  t.match(res.json, { target: { id: 'b', state: 'disabled', eligible: false }, changes: [{ kind: 'state', target: 'b', from: 'enabled', to: 'disabled' }] })
  const before = hits(s.ups)
  t.same(count(await sequence(s.client, s.gw.url + '/x', 6)), { a: 3, c: 3 })
  t.equal(s.ups[1].hits, before.b, 'b got nothing')
  t.equal((await s.status()).pools[0].targets[1].state, 'disabled')
  t.equal(sampleValue(await s.metrics(), 'lb_target_enabled', { pool: 'main', target: 'b' }), 0)

  const back = await s.call('PATCH', '/lb/admin/pools/main/targets/b', { state: 'enabled' })
  t.match(back.json, { target: { state: 'healthy', eligible: true }, changes: [{ kind: 'state', from: 'disabled', to: 'enabled' }] })
  t.same(count(await sequence(s.client, s.gw.url + '/x', 6)), { a: 2, b: 2, c: 2 })
  t.equal(sampleValue(await s.metrics(), 'lb_target_enabled', { pool: 'main', target: 'b' }), 1)
  t.same((await s.status()).changes?.map((c) => c.kind === 'state' ? c.to : c.kind), ['disabled', 'enabled'])
  t.equal(s.changeLines().length, 2)
  t.equal(s.changeLines()[0].msg, 'fastify-lb: admin changed the target "b" of pool "main" from enabled to disabled')

  const sticky = await s.call('PATCH', '/lb/admin/pools/main/targets/b', { keepSticky: true })
  t.equal(sticky.status, 400)
  t.equal(sticky.json.message, 'Invalid option for pool "main": targets.b.keepSticky = true (applies only with state "disabled")')
  const both = await s.call('PATCH', '/lb/admin/pools/main/targets/c', { weight: 2, state: 'disabled', keepSticky: true })
  t.match(both.json.changes, [{ kind: 'weight', from: 1, to: 2 }, { kind: 'state', to: 'disabled' }], 'weight and state in one call: two changes')
  t.equal(s.gw.app.lb.pool('main').get('c')?.keepSticky, true)
  for (const body of [{}, { state: 'off' }, { wieght: 2 }, { weight: 2, sate: 'disabled' }]) {
    const bad = await s.call('PATCH', '/lb/admin/pools/main/targets/a', body)
    t.equal(bad.status, 400, `${JSON.stringify(body)} refused`)
  }
  t.equal(s.gw.app.lb.pool('main').get('a')?.weight, 1, 'a call with an unknown field changes nothing')
})

test('drain: the target takes no new request, leaves once its requests end, and cannot be changed meanwhile', async (t) => {
  const s = await setUp(t)
  const pool = s.gw.app.lb.pool('main')
  const [, b] = s.ups
  b.mode = 'hold'
  // Round robin: a, b, c; the request to b waits at b.
  const first = await sequence(s.client, s.gw.url + '/x', 1)
  const held = s.client.send(s.gw.url + '/held')
  await until(() => b.active === 1, 5000, 'a request held at b')
  t.same(first, ['a'])

  const res = await s.call('PATCH', '/lb/admin/pools/main/targets/b', { state: 'draining' })
  t.equal(res.status, 202, 'accepted: it leaves when its request ends')
  t.match(res.json, { target: { id: 'b', state: 'draining', eligible: false, inFlight: 1 }, changes: [{ kind: 'state', from: 'enabled', to: 'draining' }] })
  t.same(count(await sequence(s.client, s.gw.url + '/x', 4)), { a: 2, c: 2 }, 'no new request reaches b')
  t.equal((await s.status()).pools[0].targets.find((x) => x.id === 'b')?.state, 'draining')

  const again = await s.call('PATCH', '/lb/admin/pools/main/targets/b', { state: 'enabled' })
  t.equal(again.status, 409)
  t.same(again.json, { statusCode: 409, code: 'FST_LB_DRAINING', error: 'Conflict', message: 'Target "b" of pool "main" is draining: it leaves the pool once its requests end' })

  b.release()
  t.equal((await held).servedBy, 'b', 'the request in flight is answered')
  await until(() => pool.get('b') === undefined, 5000, 'b gone')
  t.same((await s.status()).pools[0].targets.map((x) => x.id), ['a', 'c'], '/lb/status no longer lists b')
  t.equal(sampleValue(await s.metrics(), 'lb_target_weight', { pool: 'main', target: 'b' }), undefined, 'nor do the metrics')
  t.equal((await s.call('PATCH', '/lb/admin/pools/main/targets/b', { state: 'enabled' })).status, 404, 'it is not a target any more')

  const idle = await s.call('PATCH', '/lb/admin/pools/main/targets/c', { state: 'draining' })
  t.equal(idle.status, 202)
  t.equal(idle.json.target, null, 'an idle target leaves at once')
  t.same(pool.targets.map((x) => x.id), ['a'])
  t.equal(s.events.length, 2)
})

test('split weights: the next requests follow them, /lb/status and lb_split_weight show them; a bad set changes nothing', async (t) => {
  const ups = await startUpstreams(['a', 'c'])
  const lines = new LogLines()
  const gw = await startGateway({
    pools: { stable: { targets: [{ url: ups[0].url, id: 'a' }] }, canary: { targets: [{ url: ups[1].url, id: 'c' }] } },
    admin: { onRequest: requireToken }
  }, (app) => {
    app.all('/api/*', { config: { upstream: { split: [{ pool: 'stable', weight: 1 }, { pool: 'canary', weight: 1 }] } } }, app.lb.forward)
    app.get('/search/*', { config: { upstream: { targets: [{ url: ups[0].url, id: 's' }] } } }, app.lb.forward)
  }, { logger: { level: 'info', stream: lines } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const put = async (weights: unknown, route = '%2Fapi%2F*'): Promise<Answer & { json: Record<string, unknown> }> => {
    const res = await client.send(`${gw.url}/lb/admin/splits/${route}`, { method: 'PUT', headers: { authorization: TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ weights }) })
    return { ...res, json: JSON.parse(res.text) as Record<string, unknown> }
  }
  t.same(count(await sequence(client, gw.url + '/api/x', 4)), { a: 2, c: 2 })

  const res = await put({ stable: 0, canary: 3 })
  t.equal(res.status, 200)
  t.match(res.json, { split: { route: '/api/*', arms: [{ pool: 'stable', weight: 0 }, { pool: 'canary', weight: 3 }] }, changes: [{ kind: 'split', route: '/api/*', from: { stable: 1, canary: 1 }, to: { stable: 0, canary: 3 } }] })
  t.same(count(await sequence(client, gw.url + '/api/x', 6)), { c: 6 }, 'every request to the canary')
  const report = JSON.parse((await client.send(gw.url + '/lb/status')).text) as StatusReport
  t.same(report.splits[0].arms, [{ pool: 'stable', weight: 0 }, { pool: 'canary', weight: 3 }])
  t.match(report.changes, [{ kind: 'split', to: { stable: 0, canary: 3 } }])
  const metrics = (await client.send(gw.url + '/metrics')).text
  t.equal(sampleValue(metrics, 'lb_split_weight', { route: '/api/*', pool: 'canary' }), 3)
  t.equal(sampleValue(metrics, 'lb_split_weight', { route: '/api/*', pool: 'stable' }), 0)
  const logged = lines.matching('fastify-lb: admin changed')
  t.equal(logged.length, 1)
  t.equal(logged[0].msg, 'fastify-lb: admin changed the weights of split "/api/*" from {"stable":1,"canary":1} to {"stable":0,"canary":3}')

  const inline = await client.send(gw.url + '/lb/admin/pools/%2Fsearch%2F*', { headers: { authorization: TOKEN } })
  t.equal(inline.status, 200)
  t.match(JSON.parse(inline.text), { name: '/search/*', targets: [{ id: 's' }] }, 'an inline pool by its route URL, encoded')
  const listed = await client.send(gw.url + '/lb/admin/splits', { headers: { authorization: TOKEN } })
  t.same((JSON.parse(listed.text) as { splits: unknown[] }).splits, report.splits)

  const bad: Array<[unknown, RegExp]> = [
    [{ stable: 0, canary: 0 }, /pool "\/api\/\*": split = .* \(must give at least one arm a weight above 0\)/],
    [{ stable: 5 }, /pool "\/api\/\*": split\.canary = undefined \(must be given: every arm needs its weight\)/],
    [{ stable: 1, canary: 1, beta: 1 }, /beta = 1 \(is not an arm of this split\)/],
    [{ stable: 1, canary: 2_000_000 }, /must be an integer from 0 to 1000000/]
  ]
  for (const [weights, message] of bad) {
    const r = await put(weights)
    t.equal(r.status, 400, JSON.stringify(weights))
    t.equal(r.json.code, 'FST_LB_INVALID_OPTION')
    t.match(r.json.message, message)
  }
  t.same(gw.app.lb.split('/api/*').weights, { stable: 0, canary: 3 }, 'unchanged')
  t.equal(lines.matching('fastify-lb: admin changed').length, 1)
})

test('configure: a partial applies at once; a bad one answers 400 with the option error and changes nothing; secrets are never shown', async (t) => {
  const s = await setUp(t, {}, ['a', 'b'])
  const pool = s.gw.app.lb.pool('main')
  const res = await s.call('POST', '/lb/admin/pools/main/configure', { algorithm: 'consistent-hash', hashKey: { header: 'x-user' } })
  t.equal(res.status, 200)
  t.same(res.json.changed, ['algorithm', 'hashKey'])
  t.match(res.json.changes, [{ kind: 'configure', pool: 'main', changed: ['algorithm', 'hashKey'], from: { algorithm: 'round-robin', hashKey: null }, to: { algorithm: 'consistent-hash', hashKey: { header: 'x-user' } } }])
  t.equal((await s.status()).pools[0].algorithm, 'consistent-hash', '/lb/status shows it')
  for (const user of ['alice', 'bob', 'carol']) {
    t.equal(new Set(await sequence(s.client, s.gw.url + '/x', 4, { 'x-user': user })).size, 1, `${user} stays on one target`)
  }
  t.equal(s.changeLines()[0].msg, 'fastify-lb: admin changed the policy of pool "main": algorithm, hashKey')

  const before = pool.options
  const bad: Array<[unknown, string]> = [
    [{ algorithm: 'fastest' }, 'Invalid option for pool "main": algorithm = "fastest" (must be one of'],
    [{ timeout: 100, retry: { attempts: -1 } }, 'Invalid option for pool "main": retry.attempts = -1'],
    [{ targets: ['http://127.0.0.1:1'] }, 'targets = ["http://127.0.0.1:1"] (is set at startup: configure() does not change it)'],
    [{ algorthm: 'random' }, 'algorthm = "random" (is not a pool option)']
  ]
  for (const [partial, message] of bad) {
    const r = await s.call('POST', '/lb/admin/pools/main/configure', partial)
    t.equal(r.status, 400, JSON.stringify(partial))
    t.equal(r.json.code, 'FST_LB_INVALID_OPTION')
    t.ok((r.json.message as string).includes(message), r.json.message as string)
    t.notOk(r.text.includes('    at '), 'no stack trace')
  }
  t.equal((await s.call('POST', '/lb/admin/pools/main/configure', ['round-robin'])).status, 400, 'not an object')
  t.equal(pool.options, before, 'nothing changed')
  t.equal(s.events.length, 1)

  // null: back to the default.
  const reset = await s.call('POST', '/lb/admin/pools/main/configure', { algorithm: null, hashKey: null })
  t.match(reset.json, { changed: ['algorithm', 'hashKey'], changes: [{ to: { algorithm: null, hashKey: null } }] })
  t.equal(pool.options.algorithm, 'least-connections')

  const secret = 'a-long-affinity-secret-of-32-bytes!!'
  const sticky = await s.call('POST', '/lb/admin/pools/main/configure', { affinity: { secret, cookie: 'lb' } })
  t.equal(sticky.status, 200)
  t.match(sticky.json.changes, [{ to: { affinity: { secret: '[redacted]', cookie: 'lb' } } }])
  const everything = JSON.stringify(s.lines.lines) + JSON.stringify(await s.status()) + sticky.text
  t.notOk(everything.includes(secret), 'the secret is in no log line, status page or answer')
  t.equal((await s.call('POST', '/lb/admin/pools/main/configure', { affinity: { secret: 'short' } })).json.message,
    'Invalid option for pool "main": affinity.secret = "<5 bytes>" (must be at least 16 bytes)')
})

test('the status page keeps the last 20 changes; the HTML page lists them', async (t) => {
  const s = await setUp(t, {}, ['a'])
  for (let w = 2; w <= 26; w++) t.equal((await s.call('PATCH', '/lb/admin/pools/main/targets/a', { weight: w })).status, 200)
  const changes = (await s.status()).changes ?? []
  t.equal(changes.length, 20)
  t.match(changes[0], { from: 6, to: 7 })
  t.match(changes[19], { from: 25, to: 26 })
  t.equal(s.events.length, 25, 'every change was emitted')
  const html = (await s.client.send(s.gw.url + '/lb/status?format=html')).text
  t.match(html, /Recent changes/)
  t.match(html, /weight of target &quot;a&quot; of pool &quot;main&quot; from 25 to 26/)
})

test('no answer carries a stack trace: a malformed body, a listener that throws', async (t) => {
  const s = await setUp(t, {}, ['a'])
  const malformed = await s.client.send(s.gw.url + '/lb/admin/pools/main/targets/a', { method: 'PATCH', headers: { authorization: TOKEN, 'content-type': 'application/json' }, body: '{"weight":' })
  t.equal(malformed.status, 400)
  t.match(JSON.parse(malformed.text), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', error: 'Bad Request' })
  t.notOk(malformed.text.includes('    at '))

  s.gw.app.lb.on('admin', () => { throw new Error('a listener of the gateway failed') })
  const res = await s.call('PATCH', '/lb/admin/pools/main/targets/a', { weight: 2 })
  t.equal(res.status, 200, 'the change was made: its answer says so, whatever a listener does')
  t.notOk(res.text.includes('    at '))
  t.equal(s.lines.matching("fastify-lb: an 'admin' event listener threw").length, 1, "the listener's error is in the log")
  t.equal(s.gw.app.lb.pool('main').get('a')?.weight, 2, 'the change itself was made before the listener ran')
})

test('a guard that throws refuses with its status, as Fastify would answer it', async (t) => {
  const forbidden = async (): Promise<void> => { throw Object.assign(new Error('admins only'), { statusCode: 403, code: 'E_ADMINS_ONLY' }) }
  const s = await setUp(t, { admin: { onRequest: [forbidden] } }, ['a'])
  const res = await s.call('PATCH', '/lb/admin/pools/main/targets/a', { state: 'disabled' })
  t.equal(res.status, 403)
  t.same(res.json, { statusCode: 403, code: 'E_ADMINS_ONLY', error: 'Forbidden', message: 'admins only' })
  t.equal(s.gw.app.lb.pool('main').get('a')?.enabled, true, 'nothing changed')
})

test('a weight change reaches the hashing balancers too: the ring and the Maglev table give the heavier target its share', async (t) => {
  for (const algorithm of ['consistent-hash', 'maglev'] as const) {
    const s = await setUp(t, {}, ['a', 'b'])
    s.gw.app.lb.pool('main').configure({ algorithm, hashKey: { header: 'x-user' } })
    const users = Array.from({ length: 300 }, (_, i) => `user-${i}`)
    const shareOfA = async (): Promise<number> => {
      // Hashing decides by key alone, so the requests may go at once.
      const served = await Promise.all(users.map(async (user) => (await s.client.send(s.gw.url + '/x', { headers: { 'x-user': user } })).servedBy))
      return served.filter((id) => id === 'a').length / users.length
    }
    const even = await shareOfA()
    t.ok(even > 0.35 && even < 0.65, `${algorithm}: about half before (${even})`)
    t.equal((await s.call('PATCH', '/lb/admin/pools/main/targets/a', { weight: 3 })).status, 200)
    const heavy = await shareOfA()
    t.ok(heavy > 0.65 && heavy < 0.85, `${algorithm}: about three quarters after weight 3 to 1 (${heavy})`)
  }
})
