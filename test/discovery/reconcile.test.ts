import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { resolvePoolOptions } from '../../lib/options/resolve'
import { Pool, type MembershipChange } from '../../lib/pool/pool'
import { membershipUnderLoad } from '../helpers/discovery-scenario'
import { Client, sequence, startGateway, until } from '../helpers/gateway'

const url = (port: number): string => `http://127.0.0.1:${port}`

function pool (targets: Array<{ id: string, url: string, weight?: number }>): { pool: Pool, changes: MembershipChange[] } {
  const p = new Pool(resolvePoolOptions('users', { algorithm: 'weighted-round-robin', targets }))
  const changes: MembershipChange[] = []
  p.on('change', (c: MembershipChange) => changes.push(c))
  return { pool: p, changes }
}

const ids = (targets: readonly { id: string }[]): string[] => targets.map((t) => t.id)

test('reconcile applies a whole list as one change: adds, re-weighs, removes', async (t) => {
  const { pool: p, changes } = pool([{ id: 'a', url: url(1) }, { id: 'b', url: url(2) }, { id: 'c', url: url(3) }])
  const a = p.get('a')!
  a.requests = 41
  a.failures = 2
  a.ewmaMs = 7
  p.reconcile([{ id: 'a', url: url(1), weight: 4 }, { id: 'c', url: url(3) }, { id: 'd', url: url(4) }])
  t.equal(changes.length, 1, 'one change event (and one balancer rebuild) for the whole list')
  t.same(ids(changes[0].added), ['d'])
  t.same(ids(changes[0].removed), ['b'], 'b was idle, so it left at once')
  t.ok(ids(changes[0].updated).includes('a'), 'a is reported as updated')
  t.same(ids(p.targets), ['a', 'c', 'd'])
  t.equal(p.get('a'), a, 'a target that stays is the same object...')
  t.match(a, { weight: 4, requests: 41, failures: 2, ewmaMs: 7 }, '...with its counters and latency')

  p.reconcile([{ id: 'a', url: url(1), weight: 4 }, { id: 'c', url: url(3) }, { id: 'd', url: url(4) }])
  t.equal(changes.length, 1, 'the same list again changes nothing and emits nothing')
})

test('reconcile checks the whole list first: a bad entry throws and changes nothing', async (t) => {
  const { pool: p, changes } = pool([{ id: 'a', url: url(1) }])
  t.throws(() => p.reconcile([{ id: 'b', url: url(2) }, { id: 'c', url: 'ftp://x' }]),
    { code: 'FST_LB_INVALID_OPTION', message: /pool "users": targets\[1\]\.url = "ftp:\/\/x"/ })
  t.throws(() => p.reconcile([{ id: 'b', url: url(2) }, { id: 'b', url: url(3) }]), { message: /duplicates another target id/ })
  t.throws(() => p.reconcile([url(2), url(2)]), { message: /duplicates another target/ })
  t.same(ids(p.targets), ['a'])
  t.equal(changes.length, 0)
})

test('reconcile drains a target with requests in flight; listing it again takes it back', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].mode = 'slow'
  ups[0].delayMs = 400
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: ups.map((u) => ({ id: u.id, url: u.url })) } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const p = gw.app.lb.pool('main')
  const a = p.get('a')!
  const onlyB = [{ id: 'b', url: ups[1].url }]
  const both = ups.map((u) => ({ id: u.id, url: u.url }))

  let slow = client.send(gw.url + '/slow')
  await until(() => a.inFlight === 1, 5000, 'a request in flight on a')
  p.reconcile(onlyB)
  t.equal(a.state, 'draining', 'a drains')
  t.same(ids(p.eligible), ['b'])
  t.same(await sequence(client, gw.url + '/x', 3), ['b', 'b', 'b'], 'no new request reaches a')
  p.reconcile(both)
  t.equal(p.get('a'), a, 'listed again while draining: the same target comes back')
  t.equal(a.draining, false)
  t.same(ids(p.eligible), ['a', 'b'])
  t.equal((await slow).servedBy, 'a')

  slow = client.send(gw.url + '/slow')
  await until(() => a.inFlight === 1, 5000, 'a request in flight on a')
  p.reconcile(onlyB)
  t.same(ids(p.targets), ['a', 'b'], 'a stays a member while its request runs')
  const res = await slow
  t.equal(res.status, 200, 'the request in flight finished')
  t.equal(res.servedBy, 'a')
  t.same(ids(p.targets), ['b'], 'then a left')
  t.equal(p.inFlight, 0)
})

test('reconcile: an id that now names another URL drains the old target while the new one serves', async (t) => {
  const ups = await startUpstreams(['old', 'new'])
  ups[0].mode = 'slow'
  ups[0].delayMs = 300
  const gw = await startGateway({ pools: { main: { targets: [{ id: 'x', url: ups[0].url }] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const p = gw.app.lb.pool('main')
  const old = p.get('x')!
  const slow = client.send(gw.url + '/slow')
  await until(() => old.inFlight === 1, 5000, 'a request in flight on the old URL')
  p.reconcile([{ id: 'x', url: ups[1].url }])
  t.equal(p.get('x')?.url, ups[1].url, 'the id names the new target')
  t.equal(old.draining, true, 'the old one drains')
  t.same(await sequence(client, gw.url + '/x', 2), ['new', 'new'])
  t.equal((await slow).servedBy, 'old', 'the request in flight on the old URL finished')
  t.same(p.targets.map((x) => x.url), [ups[1].url], 'and the old target left')
})

test('runtime API under load: add, setWeight and remove without a failed request', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const gw = await startGateway({ pools: { main: { algorithm: 'weighted-round-robin', retry: false, targets: [ups[0], ups[1]].map((u) => ({ id: u.id, url: u.url })) } } })
  t.teardown(gw.close)
  const p = gw.app.lb.pool('main')
  // Each change through the single-target calls, the way an operator's script would make them.
  await membershipUnderLoad(t, gw, 'main', [ups[0], ups[1], ups[2]], async (members) => {
    const listed = new Set(members.map((m) => m.upstream.id))
    for (const m of members) {
      const existing = p.get(m.upstream.id)
      if (existing === undefined) p.add({ id: m.upstream.id, url: m.upstream.url, weight: m.weight })
      else if (existing.weight !== m.weight) p.setWeight(m.upstream.id, m.weight)
    }
    for (const target of p.targets) if (!listed.has(target.id) && !target.draining) p.remove(target.id).catch(() => {})
  }, { weights: true })
})
