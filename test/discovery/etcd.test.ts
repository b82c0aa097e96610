import { test } from 'tap'
import { pickFor } from '../helpers/pick'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startUpstreams } from '../helpers/demo-upstream'
import type { EtcdDiscoveryOptions } from '../../lib/discovery/options'
import type { Pool } from '../../lib/pool/pool'
import { membershipUnderLoad, memberUrls, nextDiscovery, urlsOf } from '../helpers/discovery-scenario'
import { Etcd, etcdPublisher } from '../helpers/etcd'
import { requireProgram } from '../helpers/external'
import { Client, count, sequence, startGateway, until, type Gateway } from '../helpers/gateway'

const PREFIX = '/services/users/'

function etcdDiscovery (etcd: Etcd): EtcdDiscoveryOptions {
  return { type: 'etcd', url: etcd.url, prefix: PREFIX, timeout: 2000, retryInterval: 20, maxRetryInterval: 200 }
}

test('etcd: targets added, re-weighted and removed under load, without a failed request', async (t) => {
  const program = requireProgram(t, 'etcd', 'etcd (Debian package etcd-server)')
  if (program === null) return
  const etcd = await Etcd.start(t, program)
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const publish = etcdPublisher(etcd, PREFIX)
  await publish([{ upstream: ups[0], weight: 1 }, { upstream: ups[1], weight: 1 }])
  const gw = await startGateway({ pools: { main: { algorithm: 'weighted-round-robin', retry: false, discovery: etcdDiscovery(etcd) } } })
  t.teardown(gw.close)
  await membershipUnderLoad(t, gw, 'main', [ups[0], ups[1], ups[2]], publish, { weights: true })
})

/** Where each of n keys goes on a pool hashing the x-user-id header. */
function owners (pool: Pool, n: number): string[] {
  const out: string[] = []
  const request = { headers: { 'x-user-id': '' } }
  for (let i = 0; i < n; i++) {
    request.headers['x-user-id'] = `user-${i}`
    out.push(pickFor(pool, request)?.id ?? '-')
  }
  return out
}

const state = (pool: Pool): string[] => pool.targets.map((x) => `${x.id} ${x.url} ${x.weight}`)

test('etcd: two gateway replicas watching one prefix converge to the same targets and map 10k keys alike', async (t) => {
  const program = requireProgram(t, 'etcd', 'etcd (Debian package etcd-server)')
  if (program === null) return
  const etcd = await Etcd.start(t, program)
  const ups = await startUpstreams(['u1', 'u2', 'u3', 'u4', 'u5', 'u6'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  // No ids in the values: every replica derives the same id from the URL.
  for (const u of ups.slice(0, 4)) await etcd.put(PREFIX + u.id, { url: u.url })
  const options = { pools: { main: { algorithm: 'consistent-hash' as const, hashKey: { header: 'x-user-id' }, discovery: etcdDiscovery(etcd) } } }
  const one = await startGateway(options)
  t.teardown(one.close)

  // The registry changes before the second replica starts: one replica follows the changes, the other reads the result.
  await etcd.put(PREFIX + 'u5', { url: ups[4].url, weight: 2 })
  await etcd.delete(PREFIX + 'u2')
  await etcd.put(PREFIX + 'u3', JSON.stringify(ups[2].url))
  await etcd.put(PREFIX + 'u1', { url: ups[0].url, weight: 3 })
  const two = await startGateway(options)
  t.teardown(two.close)
  const expected = urlsOf([ups[0], ups[2], ups[3], ups[4]])
  const converged = async (what: string): Promise<void> => {
    for (const gw of [one, two]) await until(() => JSON.stringify(memberUrls(gw.app.lb.pool('main'))) === JSON.stringify(expected), 10_000, what)
    await until(() => JSON.stringify(state(one.app.lb.pool('main'))) === JSON.stringify(state(two.app.lb.pool('main'))), 10_000, what)
  }
  await converged('both replicas to hold u1, u3, u4, u5')
  t.same(state(one.app.lb.pool('main')), state(two.app.lb.pool('main')), 'same ids, URLs and weights')
  t.equal(one.app.lb.pool('main').targets.find((x) => x.url === ups[0].url)?.weight, 3)
  let mapped = owners(one.app.lb.pool('main'), 10_000)
  t.same(owners(two.app.lb.pool('main'), 10_000), mapped, '10k keys map to the same targets on both replicas')
  t.equal(new Set(mapped).size, 4, 'over all four targets')

  // Both follow further changes and still agree.
  await etcd.put(PREFIX + 'u6', { url: ups[5].url })
  await etcd.delete(PREFIX + 'u4')
  expected.splice(expected.indexOf(ups[3].url), 1, ups[5].url)
  expected.sort()
  await converged('both replicas to hold u1, u3, u5, u6')
  const before = mapped
  mapped = owners(one.app.lb.pool('main'), 10_000)
  t.same(owners(two.app.lb.pool('main'), 10_000), mapped, 'after more changes, still the same mapping')
  const moved = mapped.filter((id, i) => id !== before[i]).length
  t.ok(moved < 5000, `a change of two targets moved ${moved} of 10000 keys, not all of them`)

  // Through HTTP too: the same user reaches the same upstream whichever replica it lands on.
  const client = new Client()
  t.teardown(async () => { await client.close() })
  for (let i = 0; i < 50; i++) {
    const headers = { 'x-user-id': `http-user-${i}` }
    const [x, y] = await Promise.all([one, two].map(async (gw: Gateway) => (await client.send(gw.url + '/p', { headers })).servedBy))
    if (x !== y) t.fail(`user ${i}: ${String(x)} on one replica, ${String(y)} on the other`)
  }
  t.pass('50 users over HTTP: same upstream on both replicas')
})

test('etcd: a stopped etcd keeps the last list; the watch resumes when etcd is back', async (t) => {
  const program = requireProgram(t, 'etcd', 'etcd (Debian package etcd-server)')
  if (program === null) return
  const etcd = await Etcd.start(t, program)
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  await etcd.put(PREFIX + 'a', { url: ups[0].url, id: 'a' })
  await etcd.put(PREFIX + 'b', { url: ups[1].url, id: 'b' })
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', discovery: etcdDiscovery(etcd) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  const client = new Client()
  t.teardown(async () => { await client.close() })

  const failed = nextDiscovery(pool, (e) => !e.ok)
  await etcd.stop()
  t.match(await failed, { provider: 'etcd', ok: false, targets: 2, error: /etcd at http:\/\/127\.0\.0\.1:\d+/ })
  await nextDiscovery(pool, (e) => !e.ok)
  t.same(memberUrls(pool), urlsOf([ups[0], ups[1]]), 'the last list stays')
  t.same(count(await sequence(client, gw.url + '/x', 4)), { a: 2, b: 2 }, 'and serves')

  const resumed = nextDiscovery(pool, (e) => e.ok)
  await etcd.start()
  await resumed
  t.same(memberUrls(pool), urlsOf([ups[0], ups[1]]), 'the same keys after the restart')
  await etcd.put(PREFIX + 'c', { url: ups[2].url, id: 'c' })
  await until(() => pool.targets.length === 3, 10_000, 'the resumed watch to bring c')
  t.same(memberUrls(pool), urlsOf(ups))
})

test('etcd: a key whose value is not a target is left out; bare URLs are targets', async (t) => {
  const program = requireProgram(t, 'etcd', 'etcd (Debian package etcd-server)')
  if (program === null) return
  const etcd = await Etcd.start(t, program)
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  await etcd.put(PREFIX + 'a', ups[0].url)
  await etcd.put(PREFIX + 'broken', '{"url": "ftp://nowhere"}')
  await etcd.put('/services/users-other/x', { url: ups[1].url })
  const gw = await startGateway({ pools: { main: { discovery: etcdDiscovery(etcd) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'the bare URL is a target; the bad value and keys outside the prefix are not')
  await etcd.put(PREFIX + 'broken', { url: ups[1].url, weight: 4 })
  await until(() => pool.targets.length === 2, 10_000, 'the fixed key')
  t.equal(pool.targets.find((x) => x.url === ups[1].url)?.weight, 4)
})

test('etcd: a watch refused with an error status is retried, without an unhandled error', async (t) => {
  const ups = await startUpstreams(['a'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  // An etcd gateway that reads fine but refuses watches, as a member that is still starting may.
  let watches = 0
  const server = createServer((req, res) => {
    if (req.url === '/v3/watch') {
      watches++
      res.writeHead(503, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'etcdserver: not capable', code: 14 }).repeat(1000))
      return
    }
    const value = Buffer.from(JSON.stringify({ url: ups[0].url })).toString('base64')
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ header: { revision: '7' }, kvs: [{ key: Buffer.from(PREFIX + 'a').toString('base64'), value }] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const gw = await startGateway({ pools: { main: { discovery: { type: 'etcd', url, prefix: PREFIX, retryInterval: 10, maxRetryInterval: 20 } } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf(ups), 'the range read counts')
  t.match(await nextDiscovery(pool, (e) => !e.ok), { error: /watch answered 503/ })
  await until(() => watches >= 3, 5000, 'retries')
  t.same(memberUrls(pool), urlsOf(ups), 'the list stays')
})
