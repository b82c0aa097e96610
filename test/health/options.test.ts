import { test } from 'tap'
import Fastify from 'fastify'
import lb from '../../lib/index'
import { resolvePoolOptions } from '../../lib/options/resolve'

test('defaults: everything off but retries; checks near HAProxy when turned on', async (t) => {
  const off = resolvePoolOptions('p', { targets: [] })
  t.same([off.healthCheck, off.outlierDetection, off.slowStart, off.panicThreshold], [null, null, null, 0])
  const on = resolvePoolOptions('p', { healthCheck: {}, outlierDetection: {}, slowStart: { window: 30_000 } })
  t.match(on.healthCheck, [{
    type: 'http',
    path: '/health',
    method: 'GET',
    expectedStatuses: [[200, 399]],
    body: null,
    host: null,
    port: null,
    timeout: 2000,
    interval: 5000,
    unhealthyInterval: 5000,
    jitter: 0.1,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    initialState: 'healthy'
  }])
  t.match(on.outlierDetection, {
    consecutiveFailures: 5,
    baseEjectionTime: 30_000,
    maxEjectionTime: 300_000,
    maxEjectionPercent: 0.5,
    unejectOnActiveCheck: true
  })
  t.same([...on.outlierDetection!.failOn], ['connect', 'timeout', 'reset', '5xx'])
  t.same(on.slowStart, { window: 30_000, minWeight: 0.1 })
  t.equal(resolvePoolOptions('p', { outlierDetection: { baseEjectionTime: 600_000 } }).outlierDetection!.maxEjectionTime, 600_000, 'the maximum is at least the base')
  t.equal(resolvePoolOptions('p', { healthCheck: false }).healthCheck, null)
})

test('the check configuration is part of its identity', async (t) => {
  const key = (check: object): string => resolvePoolOptions('p', { healthCheck: check }).healthCheck![0].key
  t.equal(key({}), key({ interval: 5000, path: '/health' }), 'defaults written out are the same check')
  t.not(key({}), key({ interval: 1000 }))
  t.equal(key({ interval: 1000 }), key({ interval: 1000, unhealthyInterval: 1000 }), 'unhealthyInterval defaults to the interval')
  t.not(key({}), key({ unhealthyInterval: 1000 }))
  t.not(key({ body: /a/ }), key({ body: /b/ }))
})

test('a list of checks: each read as a single one is, in order', async (t) => {
  const checks = resolvePoolOptions('p', { healthCheck: [{ type: 'tcp', interval: 1000 }, { path: '/ready', unhealthyInterval: 200 }] }).healthCheck!
  t.match(checks, [
    { type: 'tcp', interval: 1000, unhealthyInterval: 1000 },
    { type: 'http', path: '/ready', interval: 5000, unhealthyInterval: 200 }
  ])
  t.same(resolvePoolOptions('p', { healthCheck: [{ path: '/x' }] }).healthCheck, resolvePoolOptions('p', { healthCheck: { path: '/x' } }).healthCheck,
    'a list of one is the single check')
})

const bad: Array<[string, object, string, string]> = [
  ['healthCheck', { healthCheck: 'yes' }, 'healthCheck', '"yes"'],
  ['unknown check key', { healthCheck: { intervall: 10 } }, 'healthCheck.intervall', '10'],
  ['type', { healthCheck: { type: 'udp' } }, 'healthCheck.type', '"udp"'],
  ['path', { healthCheck: { path: 'health' } }, 'healthCheck.path', '"health"'],
  ['method', { healthCheck: { method: 'G T' } }, 'healthCheck.method', '"G T"'],
  ['statuses', { healthCheck: { expectedStatuses: [] } }, 'healthCheck.expectedStatuses', '[]'],
  ['status range', { healthCheck: { expectedStatuses: [[300, 200]] } }, 'healthCheck.expectedStatuses[0][1]', '200'],
  ['status', { healthCheck: { expectedStatuses: [200, 700] } }, 'healthCheck.expectedStatuses[1]', '700'],
  ['body', { healthCheck: { body: 42 } }, 'healthCheck.body', '42'],
  ['host', { healthCheck: { host: 'a b' } }, 'healthCheck.host', '"a b"'],
  ['port', { healthCheck: { port: 70000 } }, 'healthCheck.port', '70000'],
  ['timeout', { healthCheck: { timeout: 0 } }, 'healthCheck.timeout', '0'],
  ['interval', { healthCheck: { interval: 1.5 } }, 'healthCheck.interval', '1.5'],
  ['jitter', { healthCheck: { jitter: 2 } }, 'healthCheck.jitter', '2'],
  ['healthyThreshold', { healthCheck: { healthyThreshold: 0 } }, 'healthCheck.healthyThreshold', '0'],
  ['unhealthyThreshold', { healthCheck: { unhealthyThreshold: '3' } }, 'healthCheck.unhealthyThreshold', '"3"'],
  ['initialState', { healthCheck: { initialState: 'up' } }, 'healthCheck.initialState', '"up"'],
  ['http option on tcp', { healthCheck: { type: 'tcp', path: '/x' } }, 'healthCheck.path', '"/x"'],
  ['unhealthyInterval', { healthCheck: { unhealthyInterval: 0 } }, 'healthCheck.unhealthyInterval', '0'],
  ['empty list', { healthCheck: [] }, 'healthCheck', '[]'],
  ['list item', { healthCheck: [{ type: 'tcp' }, 'http'] }, 'healthCheck[1]', '"http"'],
  ['unknown key in a list', { healthCheck: [{ type: 'tcp', path: '/x' }] }, 'healthCheck[0].path', '"/x"'],
  ['interval in a list', { healthCheck: [{ type: 'tcp' }, { interval: -5 }] }, 'healthCheck[1].interval', '-5'],
  ['unhealthyInterval in a list', { healthCheck: [{ type: 'tcp' }, { unhealthyInterval: 1.5 }] }, 'healthCheck[1].unhealthyInterval', '1.5'],
  ['statuses in a list', { healthCheck: [{ type: 'tcp' }, { expectedStatuses: [200, 700] }] }, 'healthCheck[1].expectedStatuses[1]', '700'],
  ['the same check twice', { healthCheck: [{ type: 'tcp' }, { path: '/health' }, { type: 'tcp', interval: 5000 }] }, 'healthCheck[2]', '{"type":"tcp","interval":5000}'],
  ['outlierDetection', { outlierDetection: [] }, 'outlierDetection', '[]'],
  ['consecutiveFailures', { outlierDetection: { consecutiveFailures: 0 } }, 'outlierDetection.consecutiveFailures', '0'],
  ['failOn', { outlierDetection: { failOn: ['4xx'] } }, 'outlierDetection.failOn[0]', '"4xx"'],
  ['maxEjectionTime', { outlierDetection: { baseEjectionTime: 1000, maxEjectionTime: 500 } }, 'outlierDetection.maxEjectionTime', '500'],
  ['maxEjectionPercent as a percentage', { outlierDetection: { maxEjectionPercent: 50 } }, 'outlierDetection.maxEjectionPercent', '50'],
  ['unejectOnActiveCheck', { outlierDetection: { unejectOnActiveCheck: 'no' } }, 'outlierDetection.unejectOnActiveCheck', '"no"'],
  ['slowStart without window', { slowStart: {} }, 'slowStart.window', 'undefined'],
  ['minWeight', { slowStart: { window: 1000, minWeight: 0 } }, 'slowStart.minWeight', '0'],
  ['panicThreshold', { panicThreshold: 50 }, 'panicThreshold', '50']
]

for (const [what, options, field, value] of bad) {
  test(`bad ${what} fails at register, naming pool, field and value`, async (t) => {
    const app = Fastify()
    t.teardown(async () => { await app.close() })
    await t.rejects(async () => { await app.register(lb, { pools: { users: { targets: ['http://127.0.0.1:1'], ...options } } }) }, {
      code: 'FST_LB_INVALID_OPTION',
      message: new RegExp(`pool "users": ${field.replace(/[[\]]/g, '\\$&')} = ${value.replace(/[[\]]/g, '\\$&')} \\(`)
    })
  })
}

test('inline pools are validated when their route is added', async (t) => {
  const app = Fastify()
  await app.register(lb)
  t.teardown(async () => { await app.close() })
  t.throws(() => app.get('/x', { config: { upstream: { targets: ['http://127.0.0.1:1'], healthCheck: { interval: -1 } } } }, app.lb.forward), {
    code: 'FST_LB_INVALID_OPTION',
    message: /pool "\/x": healthCheck.interval = -1/
  })
})

test('the messages of a list of checks, whole', async (t) => {
  const message = (healthCheck: unknown): string => {
    try {
      resolvePoolOptions('users', { healthCheck })
    } catch (err) {
      return (err as Error).message
    }
    return 'accepted'
  }
  t.equal(message([]), 'Invalid option for pool "users": healthCheck = [] (must be a check object or a non-empty array of them)')
  t.equal(message([{ type: 'tcp' }, { interval: -5 }]), 'Invalid option for pool "users": healthCheck[1].interval = -5 (must be an integer from 1 to 3600000)')
  t.equal(message([{ type: 'tcp' }, { unhealthyInterval: 0 }]), 'Invalid option for pool "users": healthCheck[1].unhealthyInterval = 0 (must be an integer from 1 to 3600000)')
  t.equal(message([{ type: 'tcp' }, null]), 'Invalid option for pool "users": healthCheck[1] = null (must be an object)')
  t.equal(message([{ type: 'tcp', timeout: 100 }, { intervall: 10 }]), 'Invalid option for pool "users": healthCheck[1].intervall = 10 (is not a healthCheck option)')
  t.equal(message([{ type: 'tcp' }, { type: 'tcp' }]), 'Invalid option for pool "users": healthCheck[1] = {"type":"tcp"} (is the same check as healthCheck[0])')
})
