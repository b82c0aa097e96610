import { test } from 'tap'
import { DemoUpstream } from '../helpers/demo-upstream'
import { assertOneChecker, startCluster, type WorkerState } from '../helpers/cluster'

const INTERVAL = 150

function targetsOf (state: WorkerState): Record<string, boolean> {
  return Object.fromEntries(state.pools[0].targets.map((t) => [t.id, t.healthy]))
}

test('active checks run once per machine: one worker checks, every worker follows, a new worker starts with the state, a dead checker is replaced', async (t) => {
  const upstreams = await Promise.all(['a', 'b', 'c'].map(async (id) => await new DemoUpstream(id).start(0)))
  t.teardown(async () => { await Promise.all(upstreams.map(async (u) => { await u.stop() })) })
  const pools = {
    api: {
      targets: upstreams.map((u) => ({ url: u.url, id: u.id })),
      healthCheck: { path: '/health', interval: INTERVAL, unhealthyInterval: INTERVAL, jitter: 0, timeout: 500, unhealthyThreshold: 2, healthyThreshold: 2 }
    }
  }
  const c = await startCluster(t, 2, { LB_TEST_POOLS: JSON.stringify(pools) })
  const [first, second] = c.workers()
  t.equal(c.primary?.checker, first.id, 'the first worker to join runs the checks')

  // Ten checks of each upstream, counted where they arrive.
  const [, s2] = await assertOneChecker(t, c, first, second, upstreams)
  t.same(targetsOf(s2), { a: true, b: true, c: true }, 'the following worker sees every target healthy')

  // b stops: both workers see it go unhealthy, from the one worker's checks.
  const down = [first, second].map(async (w) => await c.next((r) => r.test === 'transition' && r.worker === w.id && r.target === 'b' && r.to === 'unhealthy'))
  await upstreams[1].stop()
  await Promise.all(down)
  t.same(targetsOf(await c.state(second)), { a: true, b: false, c: true }, 'b is unhealthy in the following worker')
  t.same(targetsOf(await c.state(first)), { a: true, b: false, c: true }, 'and in the checking one')

  // A worker that starts now is told the state at once: it serves its first request knowing b is down.
  await c.kill(second)
  const third = await c.fork()
  const s3 = await c.state(third)
  t.same(targetsOf(s3), { a: true, b: false, c: true }, 'a new worker starts with b unhealthy')
  t.same(s3.checks, {}, 'without a check of its own')
  t.notOk(s3.checking, 'and does not check')

  // The checking worker dies: the other one takes the checks over, with the state as it was.
  const taken = c.next((r) => r.test === 'check' && r.worker === third.id)
  await c.kill(first)
  await taken
  t.equal(c.primary?.checker, third.id, 'the remaining worker is elected')
  const after = await c.state(third)
  t.ok(after.checking, 'and checks')
  t.same(targetsOf(after), { a: true, b: false, c: true }, 'the health state is intact')

  // Its checks go on: b comes back and is healthy again after healthyThreshold passing checks.
  const up = c.next((r) => r.test === 'transition' && r.worker === third.id && r.target === 'b' && r.to === 'healthy')
  await upstreams[1].start()
  await up
  t.same(targetsOf(await c.state(third)), { a: true, b: true, c: true }, 'b is healthy again')
})
