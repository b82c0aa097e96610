import { test } from 'tap'
import Fastify from 'fastify'
import { Counter, Registry, type OpenMetricsContentType } from 'prom-client'
import lb from '../../../lib/index'
import { startUpstreams } from '../../helpers/demo-upstream'
import { Client, startGateway } from '../../helpers/gateway'
import { sampleValue } from '../../helpers/prom-text'
import { startupError } from '../../helpers/startup'

const cases: Array<[string, unknown, RegExp]> = [
  ['metrics that is not an object', { metrics: true }, /pool "\(plugin\)": metrics = true \(must be an object or false\)/],
  ['an unknown metrics option', { metrics: { buckts: [1] } }, /metrics\.buckts = \[1\] \(is not a metrics option\)/],
  ['a metrics path without a slash', { metrics: { path: 'metrics' } }, /metrics\.path = "metrics" \(must be a route path/],
  ['a metrics path with a query', { metrics: { path: '/metrics?x=1' } }, /metrics\.path = "\/metrics\?x=1"/],
  ['a registry that is not one', { metrics: { registry: {} } }, /metrics\.registry = \{\} \(must be a prom-client Registry\)/],
  ['a prefix Prometheus refuses', { metrics: { prefix: 'lb-' } }, /metrics\.prefix = "lb-" \(must be a Prometheus metric name prefix/],
  ['empty buckets', { metrics: { buckets: [] } }, /metrics\.buckets = \[\] \(must be an array of 1 to 100/],
  ['a negative bucket', { metrics: { buckets: [-1] } }, /metrics\.buckets\[0\] = -1 \(must be a positive number of seconds\)/],
  ['buckets out of order', { metrics: { buckets: [0.1, 0.05] } }, /metrics\.buckets\[1\] = 0\.05 \(must be greater than the bound before it\)/],
  ['a guard that is not a function', { metrics: { onRequest: 'token' } }, /metrics\.onRequest = "token" \(must be an onRequest hook function\)/],
  ['a guard list with a non-function', { metrics: { onRequest: [async () => {}, 3] } }, /metrics\.onRequest\[1\] = 3/],
  ['status that is not an object', { status: 'on' }, /status = "on" \(must be an object or false\)/],
  ['an unknown status option', { status: { hideUrl: true } }, /status\.hideUrl = true \(is not a status option\)/],
  ['a status path false', { status: { path: false } }, /status\.path = false \(must be a route path/],
  ['hideUrls not a boolean', { status: { hideUrls: 'yes' } }, /status\.hideUrls = "yes" \(must be a boolean\)/],
  ['a fractional refresh', { status: { refreshSeconds: 0.5 } }, /status\.refreshSeconds = 0\.5 \(must be an integer from 0 to 3600\)/],
  ['history that is not an object', { status: { history: true } }, /status\.history = true \(must be an object or false\)/],
  ['an unknown history option', { status: { history: { window: 60 } } }, /status\.history\.window = 60 \(is not a status\.history option\)/],
  ['a sampling interval too short', { status: { history: { interval: 10 } } }, /status\.history\.interval = 10 \(must be an integer from 50 to 3600000\)/],
  ['a sampling interval in seconds', { status: { history: { interval: '5s' } } }, /status\.history\.interval = "5s" \(must be an integer/],
  ['a history of one sample', { status: { history: { samples: 1 } } }, /status\.history\.samples = 1 \(must be an integer from 2 to 1440\)/]
]

for (const [what, options, message] of cases) {
  test(`startup fails on ${what}`, async (t) => {
    const err = await startupError(options)
    t.equal(err.code, 'FST_LB_INVALID_OPTION')
    t.match(err.message, message)
  })
}

test('a registry that already holds a metric of the same name fails startup, naming the prefix', async (t) => {
  const registry = new Registry()
  // eslint-disable-next-line no-new -- registered in the constructor
  new Counter({ name: 'lb_retries_total', help: 'taken', registers: [registry] })
  const err = await startupError({ metrics: { registry } })
  t.equal(err.code, 'FST_LB_INVALID_OPTION')
  t.match(err.message, /metrics\.prefix = "lb_" \(the registry already holds a metric named lb_retries_total\)/)
})

test('by default /metrics and /lb/status are served, from a registry of the plugin’s own without process metrics', async (t) => {
  const [a] = await startUpstreams(['a'])
  const gw = await startGateway({ pools: { main: { targets: [{ url: a.url, id: 'a' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await a.stop() })
  await client.send(gw.url + '/x')
  const res = await client.send(gw.url + '/metrics')
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(sampleValue(res.text, 'lb_requests_total', { pool: 'main', target: 'a', code_class: '2xx' }), 1)
  const names = new Set(res.text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]))
  t.same([...names].sort(), [
    'lb_affinity_total', 'lb_circuit_state', 'lb_circuit_transitions_total', 'lb_ejections_total', 'lb_fallback_total',
    'lb_health_checks_total', 'lb_health_transitions_total', 'lb_in_flight_requests', 'lb_mirror_total', 'lb_no_target_total', 'lb_overloaded_total',
    'lb_queue_length', 'lb_request_duration_seconds', 'lb_requests_total', 'lb_retries_total', 'lb_serving_tier', 'lb_split_total',
    'lb_split_weight', 'lb_target_enabled', 'lb_target_full', 'lb_target_healthy', 'lb_target_priority', 'lb_target_weight',
    'lb_upstream_errors_total', 'lb_websocket_connections', 'lb_websocket_total'
  ], 'the plugin’s metrics and nothing else (no process_* or nodejs_* metrics)')
  t.equal(gw.app.lb.metrics?.contentType, 'text/plain; version=0.0.4; charset=utf-8', 'app.lb.metrics is the registry')
  t.equal((await client.send(gw.url + '/lb/status')).status, 200)
})

test('two gateways in one process each have their own registry', async (t) => {
  const [a] = await startUpstreams(['a'])
  const one = await startGateway({ pools: { main: { targets: [{ url: a.url, id: 'a' }] } } })
  const two = await startGateway({ pools: { main: { targets: [{ url: a.url, id: 'a' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await one.close(); await two.close(); await a.stop() })
  await client.send(one.url + '/x')
  await client.send(one.url + '/x')
  await client.send(two.url + '/x')
  t.equal(sampleValue((await client.send(one.url + '/metrics')).text, 'lb_requests_total', { pool: 'main', target: 'a', code_class: '2xx' }), 2)
  t.equal(sampleValue((await client.send(two.url + '/metrics')).text, 'lb_requests_total', { pool: 'main', target: 'a', code_class: '2xx' }), 1)
})

test('a user registry gets the metrics beside its own; path false collects without a route; a prefix renames them', async (t) => {
  const [a] = await startUpstreams(['a'])
  const registry = new Registry()
  const mine = new Counter({ name: 'app_logins_total', help: 'Logins.', registers: [registry] })
  mine.inc(3)
  const gw = await startGateway({
    pools: { main: { targets: [{ url: a.url, id: 'a' }] } },
    metrics: { registry, path: false, prefix: 'gateway_', buckets: [0.5, 1] }
  }, (app) => {
    app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
    app.get('/internal/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await a.stop() })
  t.equal(gw.app.lb.metrics, registry)
  t.equal((await client.send(gw.url + '/x')).servedBy, 'a')
  const res = await client.send(gw.url + '/metrics')
  t.equal(res.servedBy, 'a', '/metrics is no route of the gateway: the catch-all proxies it')
  const text = (await client.send(gw.url + '/internal/metrics')).text
  t.equal(sampleValue(text, 'app_logins_total', {}), 3)
  t.equal(sampleValue(text, 'gateway_requests_total', { pool: 'main', target: 'a', code_class: '2xx' }), 2)
  t.equal(sampleValue(text, 'gateway_request_duration_seconds_bucket', { pool: 'main', target: 'a', le: '+Inf' }), 2)
  t.equal(sampleValue(text, 'gateway_request_duration_seconds_bucket', { pool: 'main', target: 'a', le: '1' }), 2, 'the configured bounds')
  t.notOk(text.includes('le="0.005"'), 'no default bounds')
  t.notOk(text.includes('lb_'), 'no metric under the default prefix')
  t.same(Registry.merge([registry, new Registry()]).getSingleMetric('gateway_requests_total') !== undefined, true, 'the registry merges')
})

test('metrics: false and status: false serve neither route', async (t) => {
  const [a] = await startUpstreams(['a'])
  const app = Fastify()
  await app.register(lb, { pools: { main: { targets: [{ url: a.url, id: 'a' }] } }, metrics: false, status: false })
  t.teardown(async () => { await app.close(); await a.stop() })
  await app.ready()
  t.equal(app.lb.metrics, null)
  t.equal((await app.inject('/metrics')).statusCode, 404)
  t.equal((await app.inject('/lb/status')).statusCode, 404)
})

test('paths are configurable', async (t) => {
  const app = Fastify()
  await app.register(lb, { metrics: { path: '/_/prom' }, status: { path: '/_/lb' } })
  t.teardown(async () => { await app.close() })
  t.equal((await app.inject('/_/prom')).statusCode, 200)
  t.equal((await app.inject('/_/lb')).json<{ pools: unknown[] }>().pools.length, 0)
  t.equal((await app.inject('/metrics')).statusCode, 404)
})

test('an OpenMetrics registry is served in its own format', async (t) => {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  const app = Fastify()
  await app.register(lb, { pools: { main: { targets: [{ url: 'http://127.0.0.1:9', id: 'a' }] } }, metrics: { registry } })
  t.teardown(async () => { await app.close() })
  const res = await app.inject('/metrics')
  t.equal(res.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8')
  t.ok(res.body.includes('# TYPE lb_retries counter\n'), 'counters are named without _total in TYPE lines')
  for (const result of ['attempted', 'succeeded', 'budget_exhausted', 'limit_exceeded', 'deadline_exceeded']) {
    t.ok(res.body.includes(`lb_retries_total{pool="main",result="${result}"} 0\n`), `${result} has its series from the start`)
  }
  t.ok(res.body.endsWith('# EOF\n'))
})
