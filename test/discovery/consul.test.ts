import { test, type Test } from 'tap'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import type { ConsulDiscoveryOptions } from '../../lib/discovery/options'
import { makeCertificates } from '../helpers/certs'
import { ConsulServer, type ConsulInstance } from '../helpers/consul'
import { membershipUnderLoad, memberUrls, nextDiscovery, urlsOf, type Member } from '../helpers/discovery-scenario'
import { Client, count, sequence, startGateway, until } from '../helpers/gateway'

async function startConsul (t: Test, options?: ConstructorParameters<typeof ConsulServer>[0]): Promise<ConsulServer> {
  const consul = await new ConsulServer(options).start()
  t.teardown(async () => { await consul.close() })
  return consul
}

const instance = (u: DemoUpstream, extra: Partial<ConsulInstance> = {}): ConsulInstance => ({ address: '127.0.0.1', port: u.port, ...extra })

function consulDiscovery (consul: ConsulServer, extra: Partial<ConsulDiscoveryOptions> = {}): ConsulDiscoveryOptions {
  // A long wait: changes must arrive because the blocked query returns, not because it timed out.
  return { type: 'consul', url: consul.url, service: 'users', wait: 60_000, retryInterval: 20, maxRetryInterval: 200, ...extra }
}

test('consul: instances added, re-weighted and removed under load, without a failed request', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await startConsul(t)
  const publish = async (members: Member[]): Promise<void> => {
    consul.setService('users', members.map((m) => instance(m.upstream, { weight: m.weight })))
  }
  await publish([{ upstream: ups[0], weight: 1 }, { upstream: ups[1], weight: 1 }])
  const gw = await startGateway({ pools: { main: { algorithm: 'weighted-round-robin', retry: false, discovery: consulDiscovery(consul) } } })
  t.teardown(gw.close)
  await membershipUnderLoad(t, gw, 'main', [ups[0], ups[1], ups[2]], publish, { weights: true })
})

test('consul: blocking queries carry the last X-Consul-Index and are held until the service changes', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await startConsul(t)
  consul.setService('users', [instance(ups[0])])
  const gw = await startGateway({ pools: { main: { discovery: consulDiscovery(consul) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  await until(() => consul.blocked === 1, 5000, 'a blocking query')
  const [first, second] = consul.queries
  t.equal(first.query.get('index'), null, 'the first query does not block')
  t.equal(first.query.get('passing'), 'true', 'only passing instances are asked for')
  t.ok(Number(second.query.get('index')) > 0, 'the next one sends the index it was given')
  t.equal(second.query.get('wait'), '60000ms')

  // Idle: the held query is all there is, nothing polls.
  const seen = consul.queries.length
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(consul.queries.length, seen, 'no query while nothing changes')

  consul.setService('users', [instance(ups[0]), instance(ups[1])])
  await until(() => pool.targets.length === 2, 5000, 'the change, well before the 60 s wait')
  t.same(memberUrls(pool), urlsOf(ups))

  // A restored snapshot sets the index back: the provider starts over instead of waiting for an index that will not come.
  // Only a held query can learn of it (a query sent later with the newer index would be held its full 60 s, by
  // Consul too), so the rewind waits until the provider's next query is held.
  await until(() => consul.blocked === 1, 5000, 'the next blocking query')
  consul.rewindIndex(3, 'users', [instance(ups[1])])
  await until(() => pool.targets.length === 1, 5000, 'the rewound service')
  consul.setService('users', [instance(ups[0])])
  await until(() => pool.targets[0]?.url === ups[0].url, 5000, 'a change after the rewind')
  t.pass('the provider followed the service through an index reset')
})

test('consul: ACL token, datacenter, tags and the passing filter', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c', 'd'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await startConsul(t, { token: 's3cret', datacenter: 'eu1' })
  consul.setService('users', [
    instance(ups[0], { tags: ['v2', 'public'] }),
    instance(ups[1], { tags: ['v2'] }),
    instance(ups[2], { tags: ['v2', 'public'], status: 'critical' }),
    // No service address: Consul's answer carries the node's.
    instance(ups[3], { address: '', nodeAddress: '127.0.0.1', tags: ['public', 'v2'] })
  ])
  const discovery = consulDiscovery(consul, { token: 's3cret', dc: 'eu1', tag: ['v2', 'public'] })
  const gw = await startGateway({ pools: { main: { discovery }, denied: { discovery: { ...discovery, token: 'wrong' } } } }, () => {})
  t.teardown(gw.close)
  t.same(memberUrls(gw.app.lb.pool('main')), urlsOf([ups[0], ups[3]]), 'tagged, passing instances; node address as fallback')
  const query = consul.queries.find((q) => q.token === 's3cret')
  t.equal(query?.query.get('dc'), 'eu1')
  t.same(query?.query.getAll('tag'), ['v2', 'public'])
  t.equal(gw.app.lb.pool('denied').targets.length, 0, 'a wrong token gets nothing')

  const denied = await nextDiscovery(gw.app.lb.pool('denied'), (e) => !e.ok)
  t.match(denied.error, /answered 403: ACL not found/)
})

test('consul: weights from Service.Weights.Passing, or from a Meta key', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await startConsul(t)
  consul.setService('users', [
    instance(ups[0], { weight: 5, meta: { lbweight: '2' } }),
    instance(ups[1], { weight: 3 }),
    instance(ups[2], { meta: { lbweight: 'heavy' } })
  ])
  const gw = await startGateway({
    pools: {
      weights: { discovery: consulDiscovery(consul) },
      meta: { discovery: consulDiscovery(consul, { weightMeta: 'lbweight' }) }
    }
  }, () => {})
  t.teardown(gw.close)
  const weights = (pool: string): number[] => ups.map((u) => gw.app.lb.pool(pool).targets.find((x) => x.url === u.url)?.weight ?? 0)
  t.same(weights('weights'), [5, 3, 1], 'Weights.Passing')
  t.same(weights('meta'), [2, 3, 1], 'Meta first; Weights.Passing when the key is missing or not a positive integer')
})

test('consul: a server answering 500, then gone, keeps the last list; it resumes when Consul answers again', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await startConsul(t)
  consul.setService('users', [instance(ups[0])])
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', discovery: consulDiscovery(consul) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  const client = new Client()
  t.teardown(async () => { await client.close() })

  consul.failWith = 500
  const failed = nextDiscovery(pool, (e) => !e.ok)
  // The held query returns with the change, and Consul answers it with a 500.
  consul.setService('users', [instance(ups[0]), instance(ups[1])])
  t.match(await failed, { provider: 'consul', ok: false, targets: 1, error: /answered 500/ })
  await nextDiscovery(pool, (e) => !e.ok)
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'the last list stays')
  t.same(await sequence(client, gw.url + '/x', 3), ['a', 'a', 'a'], 'and serves')

  consul.failWith = null
  await until(() => pool.targets.length === 2, 5000, 'the provider to retry and resume')
  t.same(memberUrls(pool), urlsOf(ups))

  // No answer at all (connections cut, nothing listening): the same.
  const gone = nextDiscovery(pool, (e) => !e.ok)
  await consul.close()
  t.match(await gone, { ok: false, targets: 2 })
  t.same(count(await sequence(client, gw.url + '/x', 4)), { a: 2, b: 2 }, 'still serving both')
})

test('consul over https: the certificate is verified by default and trusted with tls.ca', async (t) => {
  const certs = await makeCertificates(t)
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await startConsul(t, { tls: { cert: certs.server.cert, key: certs.server.key } })
  consul.setService('users', [instance(ups[0])])
  const gw = await startGateway({
    pools: {
      main: { algorithm: 'round-robin', discovery: consulDiscovery(consul, { tls: { ca: certs.ca } }) },
      strict: { discovery: consulDiscovery(consul) }
    }
  })
  t.teardown(gw.close)
  t.match(consul.url, /^https:/)
  const strict = gw.app.lb.pool('strict')
  t.equal(strict.targets.length, 0, 'without tls.ca, the certificate of an unknown CA is refused')
  t.match(await nextDiscovery(strict, (e) => !e.ok), { error: /^Consul query for users failed: unable to verify the first certificate/ })
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'trusted with tls.ca')
  await until(() => consul.blocked >= 1, 5000, 'a blocking query over https')
  consul.setService('users', [instance(ups[0]), instance(ups[1])])
  await until(() => pool.targets.length === 2, 5000, 'the change, from the held query')
  const client = new Client()
  t.teardown(async () => { await client.close() })
  t.same(count(await sequence(client, gw.url + '/x', 4)), { a: 2, b: 2 }, 'and serves both')
})
