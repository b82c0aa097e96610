import { test } from 'tap'
import { request } from 'undici'
import { DemoUpstream } from '../helpers/demo-upstream'
import { startCluster } from '../helpers/cluster'
import { Client } from '../helpers/gateway'
import { eventually, requireProgram } from '../helpers/external'
import { startPrometheus } from '../helpers/prometheus'

/** A request on a connection of its own: node:cluster hands each new connection to the next worker. */
async function fresh (url: string): Promise<string> {
  const res = await request(url, { headers: { connection: 'close' } })
  await res.body.dump()
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`)
  return String(res.headers['x-worker'])
}

test('a real Prometheus scraping the shared port of two workers sees one counter that only grows', async (t) => {
  const prometheus = requireProgram(t, 'prometheus', 'Prometheus')
  if (prometheus === null) return
  const upstreams = await Promise.all(['a', 'b'].map(async (id) => await new DemoUpstream(id).start(0)))
  t.teardown(async () => { await Promise.all(upstreams.map(async (u) => { await u.stop() })) })
  const pools = { api: { targets: upstreams.map((u) => ({ url: u.url, id: u.id })), algorithm: 'round-robin' } }
  const c = await startCluster(t, 2, { LB_TEST_POOLS: JSON.stringify(pools) })
  const client = new Client()
  t.teardown(async () => { await client.agent.close() })
  const { query, output } = await startPrometheus(t, prometheus, client, { target: c.url.replace('http://', '') })
  const total = async (): Promise<number> => (await query('sum(lb_requests_total{pool="api"})')).reduce((n, v) => n + Number(v.value[1]), 0)

  // Batches a scrape or more apart, each over fresh connections that node:cluster spreads over both workers:
  // were a scrape to answer for one worker only, the series would fall back between scrapes and Prometheus
  // would count a reset.
  const workers = new Set<string>()
  let sent = 0
  try {
    for (let batch = 0; batch < 4; batch++) {
      for (let i = 0; i < 20; i++) workers.add(await fresh(`${c.url}/api/x`))
      sent += 20
      await eventually(total, (n) => n === sent, 10_000, `batch ${batch + 1} scraped`)
    }
  } catch (err) {
    t.comment(output())
    throw err
  }
  t.equal(workers.size, 2, 'both workers served the batches')
  t.equal(await total(), 80, 'Prometheus counts every request of both workers')
  const resets = await query('sum(resets(lb_requests_total{pool="api"}[5m]))')
  t.equal(resets.length, 1, 'the series exist over the window')
  t.equal(Number(resets[0].value[1]), 0, 'and never went down between scrapes')
  const scrapes = await query('count_over_time(up{job="gateway"}[5m])')
  t.ok(Number(scrapes[0]?.value[1]) >= 4, `over at least four scrapes (${scrapes[0]?.value[1]})`)
})
