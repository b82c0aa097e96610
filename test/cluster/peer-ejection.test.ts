import { test } from 'tap'
import { HealthRegistry } from '../../lib/health/registry'
import { Pool } from '../../lib/pool/pool'
import { resolvePoolOptions } from '../../lib/options/resolve'
import { readTls } from '../../lib/options/tls'
import { OptionReader } from '../../lib/options/reader'
import { startUpstreams } from '../helpers/demo-upstream'
import { startGateway } from '../helpers/gateway'

function poolWithOutlier (): { pool: Pool, registry: HealthRegistry } {
  const pool = new Pool(resolvePoolOptions('api', {
    algorithm: 'round-robin',
    targets: [{ url: 'http://127.0.0.1:9', id: 'a' }, { url: 'http://127.0.0.1:10', id: 'b' }, { url: 'http://127.0.0.1:11', id: 'c' }],
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 1000, maxEjectionTime: 10_000 }
  }))
  const registry = new HealthRegistry(readTls(OptionReader.of('(plugin)', 'tls', {}), false))
  registry.attach(pool)
  return { pool, registry }
}

test("a peer's ejection: the same end, its count carried into the next ejection, a longer one in force kept", async (t) => {
  const { pool, registry } = poolWithOutlier()
  t.teardown(() => registry.close())
  const outlier = registry.attach(pool).outlier
  if (outlier === null) throw new Error('no outlier detector')
  const shared: Array<{ id: string, until: number, count: number }> = []
  outlier.onEject = (target, until, count) => shared.push({ id: target.id, until, count })
  const events: Array<{ id: string, peer: boolean }> = []
  pool.on('eject', (target, _until, peer) => events.push({ id: target.id, peer }))
  const b = pool.get('b')
  if (b === undefined) throw new Error('no b')

  const until = Date.now() + 5000
  outlier.ejectFromPeer(b, until, 3)
  t.equal(b.ejectedUntil, until, 'ejected until the end the peer decided')
  t.notOk(pool.eligible.includes(b), 'and out of the pickable set')
  t.same(events, [{ id: 'b', peer: true }], "the eject event says it was a peer's")
  t.same(shared, [], 'and it is not shared again')
  outlier.ejectFromPeer(b, until - 1000, 1)
  t.equal(b.ejectedUntil, until, 'a shorter one does not cut the ejection in force')
  outlier.ejectFromPeer(pool.get('c') ?? b, Date.now() - 1, 1)
  t.equal(pool.get('c')?.ejectedUntil, 0, 'an ejection already over is ignored')

  outlier.uneject(b, 'test')
  // Two failures of this process's own tries eject b again: the fourth in a row, so 4 x base.
  pool.record(b, 500, null, 1)
  pool.record(b, 500, null, 1)
  t.equal(shared.length, 1, 'its own ejection is shared')
  t.equal(shared[0].count, 4, "counted after the peer's three")
  t.ok(shared[0].until - Date.now() > 3000, 'and as long as a fourth ejection is')
  t.same(events.at(-1), { id: 'b', peer: false })
})

test('cluster: true in a process that is not a cluster worker runs alone, checks and all', async (t) => {
  const [a] = await startUpstreams(['a'])
  t.teardown(async () => { await a.stop() })
  const gw = await startGateway({
    cluster: true,
    pools: { main: { targets: [{ url: a.url, id: 'a' }], healthCheck: { path: '/health', interval: 50 } } }
  })
  t.teardown(gw.close)
  t.ok(gw.app.lb.health.checking, 'it runs its checks')
  await new Promise<void>((resolve) => gw.app.lb.health.once('check', () => resolve()))
  t.ok(a.healthHits > 0, 'the upstream is checked')
  const res = await fetch(gw.url + '/x')
  t.equal(res.status, 200, 'and requests are served')
})
