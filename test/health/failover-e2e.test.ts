import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, startGateway, until } from '../helpers/gateway'
import { HealthLog } from '../helpers/health'

test('under steady GET load, stopping 1 of 3 upstreams fails no client request; it leaves and comes back by its checks', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  const unhealthyThreshold = 2
  const healthyThreshold = 2
  const gw = await startGateway({
    pools: {
      main: {
        targets: ups.map((u) => ({ url: u.url, id: u.id })),
        healthCheck: { interval: 50, timeout: 200, unhealthyThreshold, healthyThreshold }
      }
    }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const log = new HealthLog(gw.app.lb.health, 'b')

  // Four clients in a loop, bounded in count and time; every answer is kept in order.
  const answers: Array<{ status: number, servedBy: string | undefined }> = []
  const load$ = { running: true }
  const deadline = Date.now() + 20_000
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 5000 && load$.running && Date.now() < deadline; i++) {
      const res = await client.send(gw.url + '/x')
      answers.push({ status: res.status, servedBy: res.servedBy })
    }
  }
  const load = Promise.all([worker(), worker(), worker(), worker()])
  // How many answers had arrived at each of b's transitions.
  const marks: number[] = []
  gw.app.lb.health.on('transition', (event) => { if (event.id === 'b') marks.push(answers.length) })

  await until(() => answers.length >= 100, 10_000, 'load to run')
  const port = ups[1].port
  await ups[1].stop()
  await until(() => log.transitions.length >= 1, 10_000, 'b unhealthy')
  const outAt = marks[0]
  t.same(log.from(false).slice(0, unhealthyThreshold).map((c) => c.healthy), [true, false], 'out after exactly unhealthyThreshold failed checks')
  await until(() => answers.length >= outAt + 100, 10_000, 'load while b is out')

  const mark = log.checks.length
  await ups[1].start(port)
  await until(() => log.transitions.length >= 2, 10_000, 'b healthy')
  const backAt = marks[1]
  t.same(log.from(true, mark).slice(0, healthyThreshold).map((c) => c.healthy), [false, true], 'back after exactly healthyThreshold passing checks')
  await until(() => answers.length >= backAt + 100, 10_000, 'load after b is back')
  load$.running = false
  await load

  const failed = answers.filter((a) => a.status !== 200)
  t.equal(failed.length, 0, `no client request failed (${answers.length} sent)`)
  // Answers are recorded when they arrive, so a few to b may land just after the transition.
  const whileOut = answers.slice(outAt + 8, backAt).filter((a) => a.servedBy === 'b').length
  t.equal(whileOut, 0, 'no request reached b while it was out')
  t.ok(answers.slice(backAt).some((a) => a.servedBy === 'b'), 'b serves again once it is back')
  t.equal(gw.app.lb.pool('main').inFlight, 0)
})
