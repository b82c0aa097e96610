import { test } from 'tap'
import { refusedUrl, sequence, until } from '../../helpers/gateway'
import { requireProgram, runProgram } from '../../helpers/external'
import { sampleValue } from '../../helpers/prom-text'
import { observed, ofTarget } from './fixtures'

/** Runs `promtool check metrics` on a text exposition; resolves with its exit code and output. */
async function promtoolCheck (promtool: string, text: string): Promise<{ code: number | null, output: string }> {
  return runProgram(promtool, ['check', 'metrics'], { input: text })
}

test('promtool check metrics finds no problem after traffic, failures, retries, health checks, ejections, affinity, a circuit breaker and the overload signals', async (t) => {
  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool === null) return
  const dead = await refusedUrl()
  const o = await observed(t, ['a', 'b', 'c'], {
    retry: { statuses: [500] },
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60_000 },
    affinity: { secret: 'metrics-test-secret-0123456789abcdef' },
    circuitBreaker: { minRequests: 1000 },
    maxInFlight: 1000,
    queue: { size: 10 },
    fallback: { to: { status: 200, body: 'fallback' }, on: ['no_target'] }
  }, {
    // Another pool checks the same upstreams actively: checks run apart from traffic.
    pools: { checked: { targets: [{ url: dead, id: 'dead' }], healthCheck: { interval: 30, jitter: 0, timeout: 500 } } }
  })
  const { ups, gw, client } = o
  gw.app.lb.pool('main').add({ url: dead, id: 'dead' })
  ups[1].mode = 'error'
  await sequence(client, gw.url + '/x', 12)
  const checked = gw.app.lb.pool('checked').get('dead')!
  await until(() => !checked.healthy, 5000, 'dead failing its checks')
  const text = await o.scrape()
  // The exposition is only worth checking if it holds what it should.
  t.ok((sampleValue(text, 'lb_retries_total', { pool: 'main', result: 'attempted' }) ?? 0) > 0, 'retries happened')
  t.ok((sampleValue(text, 'lb_retries_total', { pool: 'main', result: 'succeeded' }) ?? 0) > 0, 'and paid off')
  t.ok((ofTarget(text, 'lb_upstream_errors_total', 'dead', { reason: 'connect' }) ?? 0) > 0, 'a target refused connections')
  t.equal(ofTarget(text, 'lb_requests_total', 'b', { code_class: '5xx' }), 2, 'b answered 500 until ejected')
  t.ok((sampleValue(text, 'lb_health_checks_total', { target: 'dead', type: 'http', result: 'failure' }) ?? 0) > 0, 'checks failed')
  t.equal(sampleValue(text, 'lb_health_transitions_total', { target: 'dead', to: 'unhealthy' }), 1)
  t.equal(ofTarget(text, 'lb_ejections_total', 'b'), 1, 'b was ejected')
  t.ok((sampleValue(text, 'lb_affinity_total', { pool: 'main', result: 'miss' }) ?? 0) > 0, 'affinity counted')
  t.ok((ofTarget(text, 'lb_request_duration_seconds_count', 'a') ?? 0) > 0, 'latency observed')
  t.equal(sampleValue(text, 'lb_circuit_state', { pool: 'main' }), 0, 'the circuit breaker is closed')
  t.same(['closed', 'half-open', 'open'].map((to) => sampleValue(text, 'lb_circuit_transitions_total', { pool: 'main', to })), [0, 0, 0])
  t.equal(sampleValue(text, 'lb_queue_length', { pool: 'main' }), 0, 'the queue is empty')
  t.equal(sampleValue(text, 'lb_serving_tier', { pool: 'main' }), 0, 'tier 0 serves')
  t.equal(ofTarget(text, 'lb_target_priority', 'a'), 0)
  t.equal(ofTarget(text, 'lb_target_full', 'a'), 0)
  t.same(['full', 'queue_full', 'queue_timeout'].map((reason) => sampleValue(text, 'lb_overloaded_total', { pool: 'main', reason })), [0, 0, 0])
  t.equal(sampleValue(text, 'lb_fallback_total', { pool: 'main', reason: 'no_target' }), 0, 'the fallback has its series')
  const result = await promtoolCheck(promtool, text)
  t.equal(result.output, '', 'promtool reports nothing')
  t.equal(result.code, 0, 'promtool exits 0')

  // promtool is not lenient: an exposition with a problem fails.
  const broken = await promtoolCheck(promtool, '# HELP x_total a counter\n# TYPE x_total gauge\nx_total 1\n')
  t.not(broken.code, 0, 'a gauge named _total is refused')
})
