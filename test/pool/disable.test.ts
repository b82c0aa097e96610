import { test } from 'tap'
import { stickyGateway } from '../affinity/fixtures'
import { sequence, until } from '../helpers/gateway'
import { sampleValue } from '../helpers/prom-text'
import type { StatusReport } from '../../lib/observability/status-report'

async function status (client: { send: (url: string) => Promise<{ text: string }> }, url: string): Promise<Record<string, { state: string, eligible: boolean }>> {
  const report = JSON.parse((await client.send(url + '/lb/status')).text) as StatusReport
  return Object.fromEntries(report.pools[0].targets.map((t) => [t.id, { state: t.state, eligible: t.eligible }]))
}

test('disable(id): maintenance takes a target out of new picks and moves its sticky clients; enable(id) takes it back', async (t) => {
  const { gw, pool, client, jar, results } = await stickyGateway(t, ['a', 'b'])
  const alice = jar()
  t.same(await sequence(alice, gw.url + '/x', 2), ['a', 'a'], 'alice is pinned to a')

  pool.disable('a')
  t.same(pool.eligible.map((x) => x.id), ['b'], 'a leaves the pickable set at once')
  t.same(await sequence(client, gw.url + '/x', 4), ['b', 'b', 'b', 'b'], 'new clients go to b only')
  t.equal((await alice.send(gw.url + '/x')).servedBy, 'b', 'alice moves to b')
  t.same(results.slice(-1), ['reassigned'])
  t.same((await status(client, gw.url)).a, { state: 'disabled', eligible: false }, 'the status page says so')
  const metrics = (await client.send(gw.url + '/metrics')).text
  t.equal(sampleValue(metrics, 'lb_target_enabled', { pool: 'main', target: 'a' }), 0)
  t.equal(sampleValue(metrics, 'lb_target_enabled', { pool: 'main', target: 'b' }), 1)
  t.equal(sampleValue(metrics, 'lb_target_healthy', { pool: 'main', target: 'a' }), 1, 'maintenance is not a health state')
  t.equal(pool.targets.length, 2, 'and a stays a member')

  pool.enable('a')
  t.same(pool.eligible.map((x) => x.id), ['a', 'b'])
  t.same((await sequence(client, gw.url + '/x', 4)).sort(), ['a', 'a', 'b', 'b'], 'a takes its share again')
  t.same((await status(client, gw.url)).a, { state: 'healthy', eligible: true })
})

test('disable(id, { keepSticky: true }): the target\'s sticky clients stay, new clients go elsewhere', async (t) => {
  const checks = { path: '/health', interval: 30, jitter: 0, timeout: 500, unhealthyThreshold: 1 }
  const { ups, gw, pool, client, jar, results } = await stickyGateway(t, ['a', 'b'], {}, { algorithm: 'round-robin', healthCheck: checks })
  const bob = jar()
  t.same(await sequence(bob, gw.url + '/x', 2), ['a', 'a'])
  pool.disable('a', { keepSticky: true })
  t.same(await sequence(client, gw.url + '/x', 4), ['b', 'b', 'b', 'b'], 'no new client reaches a')
  t.same(await sequence(bob, gw.url + '/x', 3), ['a', 'a', 'a'], 'bob stays with a')
  t.same(results.slice(-3), ['hit', 'hit', 'hit'])
  // Health still rules: an unhealthy target keeps nobody.
  ups[0].mode = 'error'
  await until(() => pool.get('a')!.state === 'disabled' && !pool.get('a')!.healthy, 5000, 'a failing its checks')
  t.equal((await bob.send(gw.url + '/x')).servedBy, 'b', 'unless it fails its checks')
})

test('disable and enable refuse what is not a target, and a keepSticky that is not a boolean', async (t) => {
  const { pool } = await stickyGateway(t, ['a'])
  t.throws(() => { pool.disable('nope') }, { code: 'FST_LB_INVALID_OPTION', message: /pool "main": disable\(id\) = "nope"/ })
  t.throws(() => { pool.enable('nope') }, { code: 'FST_LB_INVALID_OPTION', message: /enable\(id\) = "nope"/ })
  t.throws(() => { pool.disable('a', { keepSticky: 'yes' as unknown as boolean }) }, { code: 'FST_LB_INVALID_OPTION', message: /disable\(a\)\.keepSticky = "yes"/ })
  t.equal(pool.get('a')!.enabled, true, 'a refused call changes nothing')
})
