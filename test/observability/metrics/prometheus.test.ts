import { test } from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sequence } from '../../helpers/gateway'
import { eventually, freePort, requireProgram, startProcess } from '../../helpers/external'
import { observed } from './fixtures'

interface Vector {
  metric: Record<string, string>
  value: [number, string]
}

test('a real Prometheus scrapes the gateway: requests per target match the traffic, and latency quantiles come out', async (t) => {
  const prometheus = requireProgram(t, 'prometheus', 'Prometheus')
  if (prometheus === null) return
  const o = await observed(t, ['a', 'b', 'c'])
  const { gw, client } = o
  const dir = await mkdtemp(join(tmpdir(), 'lb-prometheus-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const config = join(dir, 'prometheus.yml')
  await writeFile(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: gateway',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ['${gw.url.replace('http://', '')}']`,
    ''
  ].join('\n'))
  const port = await freePort()
  const api = `http://127.0.0.1:${port}`
  const server = startProcess(t, prometheus, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'
  ])
  const query = async (promql: string): Promise<Vector[]> => {
    const res = await client.send(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`)
    const body = JSON.parse(res.text) as { status: string, data: { result: Vector[] } }
    if (body.status !== 'success') throw new Error(res.text)
    return body.data.result
  }
  const total = async (): Promise<number> => (await query('sum(lb_requests_total{code_class="2xx"})')).reduce((n, v) => n + Number(v.value[1]), 0)
  try {
    await eventually(async () => (await client.send(`${api}/-/ready`)).status, (s) => s === 200, 20_000, 'Prometheus ready')
    // Prometheus hands static targets to its scrapers after up to 5 s.
    await eventually(async () => query('up{job="gateway"}'), (r) => r.length === 1 && r[0].value[1] === '1', 15_000, 'a first scrape')

    // Two batches a scrape apart, so that rate() over the histogram has an increase to work on.
    await sequence(client, gw.url + '/x', 15)
    await eventually(total, (n) => n === 15, 10_000, 'the first batch scraped')
    await sequence(client, gw.url + '/x', 15)
    await eventually(total, (n) => n === 30, 10_000, 'the second batch scraped')
  } catch (err) {
    t.comment(server.output())
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
