import { test } from 'tap'
import { sequence } from '../../helpers/gateway'
import { eventually, requireProgram } from '../../helpers/external'
import { startPrometheus } from '../../helpers/prometheus'
import { observed } from './fixtures'

test('a real Prometheus scrapes the gateway: requests per target match the traffic, and latency quantiles come out', async (t) => {
  const prometheus = requireProgram(t, 'prometheus', 'Prometheus')
  if (prometheus === null) return
  const o = await observed(t, ['a', 'b', 'c'])
  const { gw, client } = o
  const { query, output } = await startPrometheus(t, prometheus, client, { target: gw.url.replace('http://', '') })
  const total = async (): Promise<number> => (await query('sum(lb_requests_total{code_class="2xx"})')).reduce((n, v) => n + Number(v.value[1]), 0)
  try {
    // Two batches a scrape apart, so that rate() over the histogram has an increase to work on.
    await sequence(client, gw.url + '/x', 15)
    await eventually(total, (n) => n === 15, 10_000, 'the first batch scraped')
    await sequence(client, gw.url + '/x', 15)
    await eventually(total, (n) => n === 30, 10_000, 'the second batch scraped')
  } catch (err) {
    t.comment(output())
    throw err
  }

  const perTarget = await query('sum by (target) (lb_requests_total{pool="main",code_class="2xx"})')
  t.same(Object.fromEntries(perTarget.map((v) => [v.metric.target, Number(v.value[1])])), { a: 10, b: 10, c: 10 }, 'round robin: 30 requests, 10 per target')
  const p99 = await query('histogram_quantile(0.99, sum by (le, target) (rate(lb_request_duration_seconds_bucket{pool="main"}[30s])))')
  t.same(p99.map((v) => v.metric.target).sort(), ['a', 'b', 'c'])
  for (const v of p99) {
    const seconds = Number(v.value[1])
    t.ok(Number.isFinite(seconds) && seconds > 0 && seconds <= 30, `p99 of ${v.metric.target} is a latency in seconds (${seconds})`)
  }
  const healthy = await query('avg by (pool) (lb_target_healthy)')
  t.same(healthy.map((v) => [v.metric.pool, v.value[1]]), [['main', '1']], 'healthy share per pool')
})
