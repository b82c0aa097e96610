import { test } from 'tap'
import { startUpstreams } from '../../example-gateway/demo-upstream'
import { Client, startGateway, until } from '../helpers/gateway'

test('in-flight counters return to 0 after clients abort mid-request', async (t) => {
  const ups = await startUpstreams(['slow', 'hang'])
  ups[0].mode = 'slow'
  ups[0].delayMs = 5000
  ups[1].mode = 'hang'
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', timeout: 60_000, targets: ups.map((u) => ({ url: u.url, id: u.id })) } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')

  const controllers = Array.from({ length: 20 }, () => new AbortController())
  const pending = Promise.allSettled(controllers.map(async (controller) => client.send(gw.url + '/x', { signal: controller.signal })))
  // Abort only once every request is being handled upstream, so each abort lands mid-request.
  await until(() => ups[0].hits + ups[1].hits === 20, 5000, 'all requests upstream')
  t.equal(pool.inFlight, 20, 'twenty tries in flight')
  for (const controller of controllers) controller.abort()
  const aborted = await pending
  t.equal(aborted.filter((r) => r.status === 'rejected').length, 20, 'every client gave up')
  // The hanging upstream would hold its requests for a minute: the client's
  // disconnect must cancel the upstream request, not wait for the timeout.
  await until(() => pool.inFlight === 0, 3000, 'pool in-flight back to 0')
  t.same(pool.targets.map((x) => x.inFlight), [0, 0])
  // The upstream sees its connections closed: nothing is left waiting there either.
  await until(() => ups[0].active === 0 && ups[1].active === 0, 3000, 'upstream requests cancelled')
})

test('a client that disconnects while the body streams releases the target', async (t) => {
  const ups = await startUpstreams(['a'])
  const gw = await startGateway({ pools: { main: { targets: [{ url: ups[0].url, id: 'a' }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  for (let i = 0; i < 10; i++) {
    const res = await client.send(gw.url + '/x')
    t.equal(res.status, 200)
  }
  t.equal(gw.app.lb.pool('main').inFlight, 0)
  t.equal(gw.app.lb.pool('main').get('a')!.requests, 10)
})
