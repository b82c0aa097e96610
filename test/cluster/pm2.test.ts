import { test } from 'tap'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { clusterUpstreams } from '../helpers/cluster'
import { eventually, freePort } from '../helpers/external'
import { gone, requirePm2, startPm2 } from '../helpers/pm2'
import { byLabel } from '../helpers/prom-text'
import { resolveCluster } from '../../lib/cluster/options'
import { socketPath } from '../../lib/cluster/socket-link'

const INTERVAL = 200
const APP = 'lb-pm2-test'
const CLUSTER = { metrics: 'worker' }

interface Status {
  cluster?: { worker: number, workers: Array<{ id: number, pid: number, checking: boolean }> }
}

/** A request on a connection of its own, so that PM2's daemon hands it to the next worker. */
async function fresh (url: string): Promise<{ status: number, text: string, servedBy: string | undefined }> {
  const res = await request(url, { headers: { connection: 'close' } })
  return { status: res.statusCode, text: await res.body.text(), servedBy: res.headers['x-served-by'] as string | undefined }
}

/** Checks of `target` per worker, from one scrape ('worker' mode labels each worker's series). */
function checksByWorker (scrape: string, target: string): Record<string, number> {
  return byLabel(scrape, 'lb_health_checks_total', 'worker', { target })
}

test("under PM2's cluster mode (pm2 start -i 2), the workers elect a hub among themselves", async (t) => {
  const pm2bin = requirePm2(t)
  if (pm2bin === null) return
  const { upstreams, targets } = await clusterUpstreams(t)
  const pools = {
    api: {
      targets,
      algorithm: 'round-robin',
      healthCheck: { path: '/health', interval: INTERVAL, unhealthyInterval: INTERVAL, jitter: 0, timeout: 1000 }
    },
    flaky: { targets, algorithm: 'round-robin', retry: false, outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60_000, maxEjectionPercent: 0.5 } }
  }
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const pm2 = await startPm2(t, pm2bin, {
    LB_TEST_POOLS: JSON.stringify(pools),
    LB_TEST_CLUSTER: JSON.stringify(CLUSTER),
    LB_TEST_PORT: String(port),
    TS_NODE_TRANSPILE_ONLY: 'true'
  })
  const status = async (): Promise<Status> => JSON.parse((await fresh(`${url}/lb/status?format=json`)).text) as Status
  const scrape = async (): Promise<string> => (await fresh(`${url}/metrics`)).text
  try {
    await pm2.run(['start', join(__dirname, 'fixtures', 'pm2-worker.js'), '-i', '2', '--name', APP])
    const daemon = await pm2.daemonPid()
    t.ok(daemon !== null, `PM2's daemon runs (PID ${String(daemon)})`)
    const socket = socketPath(resolveCluster(CLUSTER) ?? { metrics: 'worker', timeout: 2000, socket: null }, { name: APP, PM2_HOME: pm2.home }, daemon ?? 0)
    t.teardown(async () => { await rm(socket, { force: true }) })

    // Both workers joined one hub: the status lists both, one of them checking.
    const joined = await eventually(status, (s) => s.cluster?.workers.length === 2 && s.cluster.workers.filter((w) => w.checking).length === 1, 25_000, 'two workers, one checking')
    const workers = joined.cluster?.workers ?? []
    const checker = workers.find((w) => w.checking)
    const follower = workers.find((w) => !w.checking)
    if (checker === undefined || follower === undefined) throw new Error('no checker')
    t.ok(existsSync(socket), 'the hub holds its socket under the temporary directory')

    // Ten checks of each upstream: all from one worker, each arriving once (not once per worker).
    const checked = await eventually(scrape, (text) => upstreams.every((u) => (checksByWorker(text, u.id)[String(checker.id)] ?? 0) >= 10), 15_000, 'ten checks of each upstream')
    for (const u of upstreams) {
      const byWorker = checksByWorker(checked, u.id)
      t.same(Object.keys(byWorker).filter((w) => byWorker[w] > 0), [String(checker.id)], `${u.id}: only worker ${checker.id} checks it`)
      const ran = byWorker[String(checker.id)]
      // The upstream counts a check when it arrives, the scrape when it ends: one may be on its way.
      t.ok(u.healthHits === ran || u.healthHits === ran + 1, `${u.id} received one check per check run (${u.healthHits} received, ${ran} run)`)
    }

    // b fails every request: one worker ejects it and the other applies the ejection.
    upstreams[1].mode = 'error'
    const ejected = await eventually(async () => {
      await fresh(`${url}/flaky/x`)
      return await scrape()
    }, (text) => Object.values(byLabel(text, 'lb_target_healthy', 'worker', { pool: 'flaky', target: 'b' })).join() === '0,0', 15_000, 'b out in both workers')
    t.equal(Object.values(byLabel(ejected, 'lb_ejections_total', 'worker', { pool: 'flaky', target: 'b' })).reduce((a, b) => a + b, 0), 1,
      'one worker decided the ejection')
    const servedBy = new Set<string>()
    for (let i = 0; i < 20; i++) servedBy.add((await fresh(`${url}/flaky/y`)).servedBy ?? '')
    t.same([...servedBy].sort(), ['a', 'c'], 'no worker sends anything to b')
    upstreams[1].mode = 'ok'

    // One scrape answers for both workers: 20 requests over fresh connections, counted in one exposition.
    const statuses = new Set<number>()
    for (let i = 0; i < 20; i++) statuses.add((await fresh(`${url}/api/z`)).status)
    t.same([...statuses], [200], 'every request is answered')
    const one = await scrape()
    const served = byLabel(one, 'lb_requests_total', 'worker', { pool: 'api' })
    t.equal(Object.values(served).reduce((a, b) => a + b, 0), 20, 'one scrape counts the 20 requests')
    t.same(Object.keys(served).sort(), [String(checker.id), String(follower.id)].sort(), 'served by both workers, each in the scrape')

    // The hub's worker dies: the other takes the socket and the checks over; PM2 starts a replacement, which joins.
    process.kill(checker.pid, 'SIGKILL')
    t.ok(await gone(checker.pid, 5000), `the hub's worker (PID ${checker.pid}) is gone`)
    const before = upstreams.map((u) => u.healthHits)
    const after = await eventually(status, (s) => s.cluster?.workers.find((w) => w.checking)?.id === follower.id, 15_000, 'the other worker checking')
    t.equal(after.cluster?.workers.filter((w) => w.checking).length, 1, 'one worker checks')
    await eventually(async () => upstreams.map((u) => u.healthHits), (hits) => hits.every((h, i) => h >= before[i] + 3), 10_000, 'three more checks of each upstream')
    const later = await scrape()
    for (const u of upstreams) {
      const byWorker = checksByWorker(later, u.id)
      t.ok((byWorker[String(follower.id)] ?? 0) >= 3, `${u.id}: checked by worker ${follower.id} now`)
    }
    const replaced = await eventually(status, (s) => s.cluster?.workers.length === 2, 20_000, 'the replacement joined')
    t.same(replaced.cluster?.workers.map((w) => w.checking).sort(), [false, true], 'of the two workers there now, one checks')
    t.notOk(replaced.cluster?.workers.some((w) => w.pid === checker.pid), 'the dead worker is not listed')

    const workerPids = replaced.cluster?.workers.map((w) => w.pid) ?? []
    t.ok(await pm2.kill(), 'pm2 kill stops the daemon')
    if (daemon !== null) t.ok(await gone(daemon, 1000), `the daemon (PID ${daemon}) is gone`)
    for (const pid of workerPids) t.ok(await gone(pid, 5000), `worker PID ${pid} is gone`)
  } catch (err) {
    t.comment(await pm2.logs())
    throw err
  }
})
