import { test } from 'tap'
import Fastify from 'fastify'
import lb from '../../lib/index'
import { resolvePoolOptions } from '../../lib/options/resolve'

test('defaults: everything off but retries; checks near HAProxy when turned on', async (t) => {
  const off = resolvePoolOptions('p', { targets: [] })
  t.same([off.healthCheck, off.outlierDetection, off.slowStart, off.panicThreshold], [null, null, null, 0])
  const on = resolvePoolOptions('p', { healthCheck: {}, outlierDetection: {}, slowStart: { window: 30_000 } })
  t.match(on.healthCheck, {
    type: 'http',
    path: '/health',
    method: 'GET',
    expectedStatuses: [[200, 399]],
    body: null,
    host: null,
    port: null,
    timeout: 2000,
    interval: 5000,
    jitter: 0.1,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    initialState: 'healthy'
  })
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
  const key = (check: object): string => resolvePoolOptions('p', { healthCheck: check }).healthCheck!.key
  t.equal(key({}), key({ interval: 5000, path: '/health' }), 'defaults written out are the same check')
  t.not(key({}), key({ interval: 1000 }))
  t.not(key({ body: /a/ }), key({ body: /b/ }))
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
