import { test } from 'tap'
import { Registry } from 'prom-client'
import { LbMetrics } from '../../lib/observability/metrics'
import { resolveMetricsOptions } from '../../lib/observability/options'
import { Pool } from '../../lib/pool/pool'
import { resolvePoolOptions } from '../../lib/options/resolve'
import { machineMetrics, workerMetrics } from '../../lib/cluster/machine-metrics'
import { resolveCluster } from '../../lib/cluster/options'
import { sampleValue } from '../helpers/prom-text'
import { requireProgram, runProgram } from '../helpers/external'

/** The metrics of one worker's pool after `ok` answers and `inFlight` tries still open. */
function workerRegistry (ok: number, inFlight: number): Registry {
  const metrics = new LbMetrics(resolveMetricsOptions({}) as NonNullable<ReturnType<typeof resolveMetricsOptions>>)
  const pool = new Pool(resolvePoolOptions('api', { targets: [{ url: 'http://127.0.0.1:9', id: 'a' }] }))
  metrics.attach(pool)
  const target = pool.targets[0]
  for (let i = 0; i < ok; i++) pool.record(target, 200, null, 3)
  for (let i = 0; i < inFlight; i++) pool.acquire(target)
  return metrics.registry as Registry
}

test('aggregate: counters and histograms summed, gauges by their aggregator', async (t) => {
  const gathered = [
    { worker: 1, pid: 1, data: await workerMetrics(workerRegistry(3, 1), 'aggregate', 1) },
    { worker: 2, pid: 2, data: await workerMetrics(workerRegistry(4, 2), 'aggregate', 2) }
  ]
  const text = await machineMetrics(gathered, Registry.PROMETHEUS_CONTENT_TYPE)
  t.equal(sampleValue(text, 'lb_requests_total', { pool: 'api', target: 'a', code_class: '2xx' }), 7, 'requests summed')
  t.equal(sampleValue(text, 'lb_request_duration_seconds_count', { pool: 'api', target: 'a' }), 7, 'histogram counts summed')
  t.equal(sampleValue(text, 'lb_in_flight_requests', { pool: 'api', target: 'a' }), 3, 'in flight summed')
  t.equal(sampleValue(text, 'lb_target_healthy', { pool: 'api', target: 'a' }), 1, 'healthy: the minimum, not a sum')
  t.equal(sampleValue(text, 'lb_target_weight', { pool: 'api', target: 'a' }), 1, 'weight: the average')
  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool !== null) t.equal((await runProgram(promtool, ['check', 'metrics'], { input: text })).output, '', 'promtool reports nothing')
})

test("worker: each worker's series with a worker label", async (t) => {
  const gathered = [
    { worker: 1, pid: 1, data: await workerMetrics(workerRegistry(3, 1), 'worker', 1) },
    { worker: 2, pid: 2, data: await workerMetrics(workerRegistry(4, 2), 'worker', 2) }
  ]
  const text = await machineMetrics(gathered, Registry.PROMETHEUS_CONTENT_TYPE)
  t.equal(sampleValue(text, 'lb_requests_total', { pool: 'api', target: 'a', code_class: '2xx', worker: '1' }), 3)
  t.equal(sampleValue(text, 'lb_requests_total', { pool: 'api', target: 'a', code_class: '2xx', worker: '2' }), 4)
  t.equal(sampleValue(text, 'lb_in_flight_requests', { pool: 'api', target: 'a', worker: '2' }), 2)
  t.equal(sampleValue(text, 'lb_request_duration_seconds_bucket', { pool: 'api', target: 'a', le: '+Inf', worker: '1' }), 3)
  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool !== null) t.equal((await runProgram(promtool, ['check', 'metrics'], { input: text })).output, '', 'promtool reports nothing')
})

test('the cluster option', async (t) => {
  t.equal(resolveCluster(undefined), null, 'off by default')
  t.equal(resolveCluster(false), null)
  t.same(resolveCluster(true), { metrics: 'aggregate', timeout: 2000, socket: null })
  t.same(resolveCluster({ metrics: 'worker', timeout: 500, socket: '/run/gateway/lb.sock' }), { metrics: 'worker', timeout: 500, socket: '/run/gateway/lb.sock' })
  t.throws(() => resolveCluster({ socket: 'lb.sock' }), { code: 'FST_LB_INVALID_OPTION', message: /cluster\.socket = "lb\.sock" \(must be an absolute path of at most 100 characters\)/ })
  t.throws(() => resolveCluster({ socket: '/' + 'x'.repeat(100) }), { code: 'FST_LB_INVALID_OPTION', message: /cluster\.socket/ })
  t.throws(() => resolveCluster({ metrics: 'label' }), { code: 'FST_LB_INVALID_OPTION', message: /cluster\.metrics = "label" \(must be one of aggregate, worker\)/ })
  t.throws(() => resolveCluster({ timeout: 0 }), { code: 'FST_LB_INVALID_OPTION', message: /cluster\.timeout = 0/ })
  t.throws(() => resolveCluster({ worker: true }), { code: 'FST_LB_INVALID_OPTION', message: /cluster\.worker/ })
  t.throws(() => resolveCluster('yes'), { code: 'FST_LB_INVALID_OPTION', message: /cluster = "yes"/ })
})
