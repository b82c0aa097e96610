import { test } from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { clusterUpstreams, assertOneChecker, ejectedByTraffic, startCluster } from '../helpers/cluster'
import { byLabel } from '../helpers/prom-text'

const INTERVAL = 150

/** A request on a connection of its own: node:cluster hands each new connection to the next worker. */
async function fresh (url: string): Promise<{ text: string, worker: string }> {
  const res = await request(url, { headers: { connection: 'close' } })
  return { text: await res.body.text(), worker: String(res.headers['x-worker']) }
}

test("workers whose primary runs none of the plugin's code (PM2's cluster mode) elect a hub on a Unix socket", async (t) => {
  const { upstreams, targets } = await clusterUpstreams(t)
  const dir = await mkdtemp(join(tmpdir(), 'lb-hub-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const pools = {
    api: {
      targets,
      algorithm: 'round-robin',
      healthCheck: { path: '/health', interval: INTERVAL, unhealthyInterval: INTERVAL, jitter: 0, timeout: 500, unhealthyThreshold: 2, healthyThreshold: 2 }
    },
    flaky: { targets, algorithm: 'round-robin', retry: false, outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60_000, maxEjectionPercent: 0.5 } }
  }
  // The test process is the node:cluster primary, as PM2's daemon would be, without clusterPrimary(); the workers see PM2's variables.
  const c = await startCluster(t, 2, {
    LB_TEST_POOLS: JSON.stringify(pools),
    // A gathering waits 3/4 of the timeout for each worker: generous, for a loaded machine.
    LB_TEST_CLUSTER: JSON.stringify({ socket: join(dir, 'hub.sock'), timeout: 5000 }),
    pm_id: '0',
    NODE_APP_INSTANCE: '0',
    exec_mode: 'cluster_mode'
  }, false)
  const [first, second] = c.workers()

  // Ten checks of each upstream, counted where they arrive: from one worker only.
  await assertOneChecker(t, c, first, second, upstreams)

  // An ejection one worker decides applies in the other.
  upstreams[1].mode = 'error'
  const [e1, e2] = await ejectedByTraffic(c, [first, second], 'b', async () => await fresh(`${c.url}/flaky/x`))
  t.equal(e1.until, e2.until, 'both workers eject b until the same moment')
  t.ok(e1.peer !== e2.peer, 'one worker decided, the other applied its decision')
  upstreams[1].mode = 'ok'

  // One scrape answers for both workers.
  const workers = new Set<string>()
  for (let i = 0; i < 20; i++) workers.add((await fresh(`${c.url}/api/y`)).worker)
  t.equal(workers.size, 2, 'both workers served')
  const scrape = (await fresh(`${c.url}/metrics`)).text
  const total = Object.values(byLabel(scrape, 'lb_requests_total', 'target', { pool: 'api' })).reduce((a, b) => a + b, 0)
  t.equal(total, 20, 'one scrape counts the requests of both workers')
  t.equal(byLabel(scrape, 'lb_ejections_total', 'target', { pool: 'flaky' }).b, 1, 'the ejection counts once for the machine')
  const status = JSON.parse((await fresh(`${c.url}/lb/status?format=json`)).text) as { cluster: { workers: Array<{ id: number, checking: boolean }> } }
  t.same(status.cluster.workers.map((w) => [w.id, w.checking]), [[first.id, true], [second.id, false]], 'the status page lists both workers, and the checking one')
  const page = (await request(`${c.url}/lb/status`, { headers: { accept: 'text/html' } })).body
  const html = await page.text()
  t.match(html, 'Cluster: this page from worker', 'the HTML page says it answers for the cluster')
  t.match(html, `worker ${first.id} (PID ${first.process.pid ?? 0}, runs the checks)`, 'and names the checking worker')
  const cells = [...html.matchAll(/data-workers="([^"]*)"/g)].map((m) => m[1])
  t.equal(cells.length, 6, 'each target of each pool shows its in-flight count per worker')
  t.ok(cells.every((cell) => cell === `${first.id}:0 ${second.id}:0`), `of both workers (${cells[0]})`)

  // The worker that holds the socket dies: the other takes the socket (its file is left behind) and the checks over.
  const taken = c.next((r) => r.test === 'check' && r.worker === second.id)
  await c.kill(first)
  await taken
  t.ok((await c.state(second)).checking, 'the remaining worker checks')

  // A worker that starts now joins the new hub, and is told the ejection in force.
  const third = await c.fork()
  const s3 = await c.state(third)
  t.notOk(s3.checking, 'a new worker does not check')
  t.same(s3.checks, {}, 'and ran no check')
  t.equal(s3.pools.find((p) => p.name === 'flaky')?.targets.find((x) => x.id === 'b')?.ejectedUntil, e1.until, 'it starts with b ejected until the same moment')
  const after = JSON.parse((await fresh(`${c.url}/lb/status?format=json`)).text) as { cluster: { workers: Array<{ id: number, checking: boolean }> } }
  t.same(after.cluster.workers.map((w) => [w.id, w.checking]), [[second.id, true], [third.id, false]], 'the status page lists the two workers there now')
})
