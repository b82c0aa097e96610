import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, count, sequence, startGateway, until } from '../helpers/gateway'
import { LogLines } from '../helpers/health'

test('below panicThreshold the pool routes over every target; without it, over the healthy ones', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  const lines = new LogLines()
  const pool = (panicThreshold?: number): object => ({
    algorithm: 'round-robin',
    targets: ups.map((u) => ({ url: u.url, id: u.id })),
    healthCheck: { interval: 30, jitter: 0, unhealthyThreshold: 1, healthyThreshold: 1 },
    panicThreshold
  })
  const gw = await startGateway({ pools: { panicky: pool(0.5), calm: pool() } }, (app) => {
    app.get('/panicky', { config: { upstream: 'panicky' } }, app.lb.forward)
    app.get('/calm', { config: { upstream: 'calm' } }, app.lb.forward)
  }, { logger: { level: 'info', stream: lines } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const panicky = gw.app.lb.pool('panicky')
  const calm = gw.app.lb.pool('calm')
  const healthy = (): string[] => panicky.targets.filter((x) => x.healthy).map((x) => x.id)

  ups[2].mode = 'error'
  await until(() => healthy().length === 2, 5000, 'c unhealthy')
  t.equal(panicky.panic, false, '2 of 3 healthy is above 0.5')
  t.same(count(await sequence(client, gw.url + '/panicky', 4)), { a: 2, b: 2 })

  ups[1].mode = 'error'
  await until(() => healthy().length === 1, 5000, 'b unhealthy')
  t.equal(panicky.panic, true, '1 of 3 healthy is below 0.5')
  t.same(count(await sequence(client, gw.url + '/panicky', 6)), { a: 2, b: 2, c: 2 }, 'panic: every target, unhealthy ones too')
  t.equal(calm.panic, false)
  t.same(await sequence(client, gw.url + '/calm', 3), ['a', 'a', 'a'], 'panicThreshold is off by default')

  ups[2].mode = 'ok'
  await until(() => healthy().length === 2, 5000, 'c healthy')
  t.equal(panicky.panic, false, 'the panic ends with enough healthy targets')
  t.same(count(await sequence(client, gw.url + '/panicky', 4)), { a: 2, c: 2 })
  t.same(lines.matching('panic').map((l) => [l.pool, l.level]), [['panicky', 40], ['panicky', 30]], 'start and end logged once each')
})
