import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, startGateway, until } from '../helpers/gateway'
import { HealthLog } from '../helpers/health'
import { assertIdle } from '../helpers/leaks'
import { Load } from '../helpers/load'

const UNHEALTHY_AFTER = 3
const HEALTHY_AFTER = 2

/** The health a target must have after each check, replayed from the checks' results alone. */
function replay (oks: boolean[]): boolean[] {
  let healthy = true
  let passes = 0
  let fails = 0
  return oks.map((ok, i) => {
    passes = ok ? passes + 1 : 0
    fails = ok ? 0 : fails + 1
    // The first check decides alone; afterwards only a full run of checks changes the state.
    healthy = i === 0 ? ok : healthy ? fails < UNHEALTHY_AFTER : passes >= HEALTHY_AFTER
    return healthy
  })
}

test('a flapping upstream: state changes only as the thresholds allow, and no GET is lost', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'flap'])
  const gw = await startGateway({
    pools: {
      main: {
        targets: ups.map((u) => ({ url: u.url, id: u.id })),
        healthCheck: { interval: 25, jitter: 0, timeout: 200, unhealthyThreshold: UNHEALTHY_AFTER, healthyThreshold: HEALTHY_AFTER }
      }
    }
  })
  const client = new Client()
  const flap = ups[2]
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const log = new HealthLog(gw.app.lb.health, 'flap')
  const pool = gw.app.lb.pool('main')
  await until(() => log.checks.length > 0, 5000, 'the first check')

  const load = new Load(client, gw.url + '/x', { concurrency: 6, maxMs: 20_000 })
  // Down and up every 150 ms, 10 times: as often as a check or two, so that some outages are too short to count.
  const periods = [150, 150, 150, 150, 400, 150, 60, 60, 400, 150]
  for (const ms of periods) {
    if (flap.listening) await flap.stop()
    else await flap.start()
    await new Promise((resolve) => setTimeout(resolve, ms))
  }
  if (!flap.listening) await flap.start()
  await until(() => flap.hits > 0 && pool.get('flap')!.healthy && log.checks.slice(-HEALTHY_AFTER).every((c) => c.ok), 5000, 'the flapping upstream back')
  await load.stop()

  t.same(load.failures, [], `no failed GET among ${load.total}`)
  const oks = log.checks.map((c) => c.ok)
  t.ok(oks.includes(false) && oks.includes(true), `checks saw both states (${oks.length} checks)`)
  t.same(log.checks.map((c) => c.healthy), replay(oks), 'after every check, the state the thresholds give')
  const changes = replay(oks).filter((h, i, all) => i > 0 && h !== all[i - 1]).length
  t.equal(log.transitions.length, changes, 'one transition per change, none more')
  t.ok(log.transitions.length <= periods.length, `no thrash: ${log.transitions.length} transitions for ${periods.length} flaps`)
  for (const tr of log.transitions) {
    t.match(tr.reason, tr.to === 'unhealthy' ? new RegExp(`^${UNHEALTHY_AFTER} consecutive failed`) : new RegExp(`^${HEALTHY_AFTER} consecutive passing`))
  }
  await assertIdle(t, pool, 'after flapping')
})
