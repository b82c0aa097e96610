import { test } from 'tap'
import { request } from 'undici'
import { clusterUpstreams, ejectedByTraffic, startCluster } from '../helpers/cluster'
import { Client } from '../helpers/gateway'
import { runProgram, requireProgram } from '../helpers/external'
import { byLabel } from '../helpers/prom-text'

/** A request on a connection of its own: node:cluster hands each new connection to the next worker. */
async function fresh (url: string): Promise<{ status: number, servedBy: string | undefined, worker: string }> {
  const res = await request(url, { headers: { connection: 'close' } })
  await res.body.dump()
  return { status: res.statusCode, servedBy: res.headers['x-served-by'] as string | undefined, worker: String(res.headers['x-worker']) }
}

function total (text: string, pool: string): number {
  return Object.values(byLabel(text, 'lb_requests_total', 'target', { pool })).reduce((a, b) => a + b, 0)
}

test('two workers share ejections and answer one scrape for the machine; a crashed worker leaves the others serving', async (t) => {
  const { upstreams, targets } = await clusterUpstreams(t)
  const pools = {
    flaky: {
      targets,
      algorithm: 'round-robin',
      retry: false,
      outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60_000, maxEjectionPercent: 0.5 }
    },
    api: { targets, algorithm: 'round-robin' }
  }
  const c = await startCluster(t, 2, { LB_TEST_POOLS: JSON.stringify(pools) })
  const [first, second] = c.workers()

  // b fails every request: the first worker to see two failures in a row ejects it, and both apply the ejection.
  upstreams[1].mode = 'error'
  const [e1, e2] = await ejectedByTraffic(c, [first, second], 'b', async () => await fresh(`${c.url}/flaky/x`))
  t.equal(e1.until, e2.until, 'both workers eject b until the same moment')
  t.ok(e1.peer !== e2.peer, 'one worker decided, the other applied its decision')
  const seen = new Set<string>()
  const servedBy = new Set<string>()
  for (let i = 0; i < 40; i++) {
    const answer = await fresh(`${c.url}/flaky/y`)
    t.equal(answer.status, 200, `request ${i} answered`)
    seen.add(answer.worker)
    servedBy.add(answer.servedBy ?? '')
  }
  t.same([...seen].sort(), [String(first.id), String(second.id)].sort(), 'both workers served')
  t.same([...servedBy].sort(), ['a', 'c'], 'and neither sent anything to the ejected b')

  // 1,000 requests through the shared port, over connections both workers hold; b answers again (it stays ejected from flaky).
  upstreams[1].mode = 'ok'
  const client = new Client(16)
  t.teardown(async () => { await client.agent.close() })
  const byWorker: Record<string, number> = {}
  for (let sent = 0; sent < 1000; sent += 50) {
    await Promise.all(Array.from({ length: 50 }, async () => {
      const answer = await client.send(`${c.url}/api/z`)
      if (answer.status !== 200) throw new Error(`status ${answer.status}`)
      const worker = String(answer.headers['x-worker'])
      byWorker[worker] = (byWorker[worker] ?? 0) + 1
    }))
  }
  t.equal(Object.keys(byWorker).length, 2, `both workers served some of them (${JSON.stringify(byWorker)})`)
  const scrape = async (): Promise<string> => (await client.send(`${c.url}/metrics`)).text
  const firstScrape = await scrape()
  t.equal(total(firstScrape, 'api'), 1000, 'one scrape counts the 1,000 requests of both workers')
  const perTarget = byLabel(firstScrape, 'lb_requests_total', 'target', { pool: 'api' })
  t.same(Object.keys(perTarget).sort(), ['a', 'b', 'c'], 'over the three targets')
  for (let i = 0; i < 6; i++) t.ok(total(await scrape(), 'api') >= 1000, `scrape ${i + 2} reports no less`)
  t.equal(byLabel(firstScrape, 'lb_ejections_total', 'target', { pool: 'flaky' }).b, 1, 'the ejection counts once for the machine')
  t.equal(byLabel(firstScrape, 'lb_target_healthy', 'target', { pool: 'flaky' }).b, 0, 'b is out in every worker')
  t.equal(byLabel(firstScrape, 'lb_target_healthy', 'target', { pool: 'api' }).a, 1, 'a healthy gauge stays 1, not one per worker')

  // The status page answers for the machine too: counters summed, each worker's in-flight listed.
  const status = JSON.parse((await client.send(`${c.url}/lb/status?format=json`)).text) as {
    cluster: { workers: Array<{ id: number, checking: boolean, inFlight: number }> }
    pools: Array<{ name: string, targets: Array<{ id: string, requests: number, inFlight: number, workers: Array<{ worker: number, inFlight: number }> }> }>
  }
  t.same(status.cluster.workers.map((w) => w.id), [first.id, second.id], 'the status lists both workers')
  t.same(status.cluster.workers.map((w) => w.checking), [true, false], 'and which one runs the checks')
  const api = status.pools.find((p) => p.name === 'api')
  t.equal(api?.targets.reduce((n, x) => n + x.requests, 0), 1000, 'its request counts are the machine\'s')
  t.same(api?.targets[0].workers.map((w) => w.worker), [first.id, second.id], 'each target shows the in-flight count of each worker')

  const promtool = requireProgram(t, 'promtool', "Prometheus's promtool")
  if (promtool !== null) {
    const check = await runProgram(promtool, ['check', 'metrics'], { input: firstScrape })
    t.equal(check.output, '', 'promtool reports nothing')
    t.equal(check.code, 0, 'promtool exits 0')
  }

  // A worker crashes and is replaced: the other one serves all along, and the new one knows b is ejected.
  await c.kill(second)
  for (let i = 0; i < 10; i++) t.equal((await fresh(`${c.url}/flaky/w`)).worker, String(first.id), 'the remaining worker serves')
  const third = await c.fork()
  const state = await c.state(third)
  const flaky = state.pools.find((p) => p.name === 'flaky')
  t.equal(flaky?.targets.find((x) => x.id === 'b')?.ejectedUntil, e1.until, 'the new worker starts with b ejected until the same moment')
  const after = new Set<string>()
  for (let i = 0; i < 20; i++) after.add((await fresh(`${c.url}/flaky/v`)).servedBy ?? '')
  t.same([...after].sort(), ['a', 'c'], 'requests still avoid b')
})
