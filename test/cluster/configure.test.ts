import { test } from 'tap'
import { request } from 'undici'
import { DemoUpstream } from '../helpers/demo-upstream'
import { ejectedByTraffic, startCluster } from '../helpers/cluster'

/** A request on a connection of its own: node:cluster hands each new connection to the next worker. */
async function fresh (url: string): Promise<void> {
  const res = await request(url, { headers: { connection: 'close' } })
  await res.body.dump()
}

test('outlier detection switched on by configure() shares its ejections with the other worker', async (t) => {
  const upstreams = await Promise.all(['a', 'b', 'c'].map(async (id) => await new DemoUpstream(id).start(0)))
  t.teardown(async () => { await Promise.all(upstreams.map(async (u) => { await u.stop() })) })
  const pools = { api: { targets: upstreams.map((u) => ({ url: u.url, id: u.id })), algorithm: 'round-robin', retry: false } }
  const c = await startCluster(t, 2, { LB_TEST_POOLS: JSON.stringify(pools) })
  const [first, second] = c.workers()

  // Both workers get the same new policy, as a deployment would: a new outlier detector in each.
  const policy = { outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60_000, maxEjectionPercent: 0.5 } }
  await Promise.all([first, second].map(async (w) => {
    const configured = c.next((r) => r.test === 'configured' && r.worker === w.id)
    w.send({ test: 'configure', pool: 'api', policy })
    await configured
  }))

  upstreams[1].mode = 'error'
  const [e1, e2] = await ejectedByTraffic(c, [first, second], 'b', async () => await fresh(`${c.url}/api/x`))
  t.equal(e1.until, e2.until, 'both workers eject b until the same moment')
  t.ok(e1.peer !== e2.peer, 'one worker decided, the other applied its decision')
})
