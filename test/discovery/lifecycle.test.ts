import { test } from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startUpstreams } from '../helpers/demo-upstream'
import { ConsulServer } from '../helpers/consul'
import { memberUrls, nextDiscovery, urlsOf } from '../helpers/discovery-scenario'
import { Client, count, sequence, startGateway, until } from '../helpers/gateway'
import { LogLines } from '../helpers/health'
import { tempDir } from '../helpers/servers'

test('closing the gateway stops every provider: no held query, no further request, no event', async (t) => {
  const ups = await startUpstreams(['a'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await new ConsulServer().start()
  t.teardown(async () => { await consul.close() })
  consul.setService('users', [{ address: '127.0.0.1', port: ups[0].port }])
  const path = join(await tempDir(t, 'lifecycle'), 'targets.json')
  await writeFile(path, JSON.stringify([ups[0].url]))
  const gw = await startGateway({
    pools: {
      main: { discovery: [{ type: 'consul', url: consul.url, service: 'users', wait: 60_000 }, { type: 'file', path, debounce: 10, interval: 20 }] }
    }
  })
  const pool = gw.app.lb.pool('main')
  await until(() => consul.blocked === 1, 5000, 'a held query')
  let events = 0
  pool.on('discovery', () => { events++ })
  await gw.close()
  await until(() => consul.blocked === 0, 5000, 'the held query to be cut')
  const queries = consul.queries.length
  consul.setService('users', [{ address: '127.0.0.1', port: ups[0].port + 1 }])
  await writeFile(path, JSON.stringify([]))
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(consul.queries.length, queries, 'no query after close')
  t.equal(events, 0, 'no discovery event after close')
  t.same(memberUrls(pool), urlsOf(ups), 'the pool is left as it was')
})

test('an inline pool follows its provider; two providers in one pool add up, and one failing keeps its share', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await new ConsulServer().start()
  t.teardown(async () => { await consul.close() })
  consul.setService('users', [{ address: '127.0.0.1', port: ups[1].port }, { address: '127.0.0.1', port: ups[2].port }])
  const path = join(await tempDir(t, 'lifecycle'), 'targets.json')
  // The file lists b too: it counts once.
  await writeFile(path, JSON.stringify([ups[0].url, ups[1].url]))
  const upstream = {
    algorithm: 'round-robin' as const,
    discovery: [
      { type: 'file' as const, path, debounce: 10, interval: 0 },
      { type: 'consul' as const, url: consul.url, service: 'users', wait: 60_000, retryInterval: 20, maxRetryInterval: 100 }
    ]
  }
  const gw = await startGateway({}, (app) => { app.get('/inline/*', { config: { upstream } }, app.lb.forward) })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('/inline/*')
  t.same(memberUrls(pool), urlsOf(ups), 'file and Consul lists add up, without duplicates')

  consul.failWith = 500
  consul.setService('users', [])
  await nextDiscovery(pool, (e) => e.provider === 'consul' && !e.ok)
  const read = nextDiscovery(pool, (e) => e.provider === 'file' && e.ok)
  await writeFile(path, JSON.stringify([ups[0].url]))
  await read
  t.same(memberUrls(pool), urlsOf(ups), 'b stays: Consul still lists it in its last list')
  const client = new Client()
  t.teardown(async () => { await client.close() })
  t.same(count(await sequence(client, gw.url + '/inline/x', 6)), { a: 2, b: 2, c: 2 })
})

test('discovery logs a failure once, its recovery, and each change of the pool', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const consul = await new ConsulServer().start()
  t.teardown(async () => { await consul.close() })
  consul.setService('users', [{ address: '127.0.0.1', port: ups[0].port }])
  const lines = new LogLines()
  const gw = await startGateway({
    pools: { main: { discovery: { type: 'consul', url: consul.url, service: 'users', wait: 60_000, retryInterval: 10, maxRetryInterval: 20 } } }
  }, undefined, { logger: { level: 'info', stream: lines } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.match(lines.matching('discovery changed the pool'), [{ level: 30, pool: 'main', provider: 'consul', added: [pool.targets[0].id], targets: 1 }])

  consul.failWith = 500
  consul.setService('users', [{ address: '127.0.0.1', port: ups[0].port }, { address: '127.0.0.1', port: ups[1].port }])
  for (let i = 0; i < 4; i++) await nextDiscovery(pool, (e) => !e.ok)
  t.match(lines.matching('discovery failed'), [{ level: 40, pool: 'main', provider: 'consul', error: /answered 500/ }], 'four failures, one warning')
  consul.failWith = null
  await until(() => pool.targets.length === 2, 5000, 'recovery')
  t.equal(lines.matching('discovery recovered').length, 1)
  t.equal(lines.matching('discovery changed the pool').length, 2)
})

test('a discovered target is health-checked like a configured one, and one that leaves is no longer checked', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const path = join(await tempDir(t, 'lifecycle'), 'targets.json')
  await writeFile(path, JSON.stringify([{ id: 'a', url: ups[0].url }]))
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', healthCheck: { interval: 30, unhealthyThreshold: 1 }, discovery: { type: 'file', path, debounce: 10, interval: 0 } } }
  })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  ups[1].mode = 'error'
  await writeFile(path, JSON.stringify([{ id: 'a', url: ups[0].url }, { id: 'b', url: ups[1].url }]))
  await until(() => pool.get('b')?.state === 'unhealthy', 5000, 'the discovered target to be checked and found failing')
  t.ok(ups[1].healthHits > 0, 'b was checked')
  t.same(pool.eligible.map((x) => x.id), ['a'])

  await writeFile(path, JSON.stringify([{ id: 'a', url: ups[0].url }]))
  await until(() => pool.get('b') === undefined, 5000, 'b to leave')
  t.same([...gw.app.lb.health.monitors()].map((m) => m.id), ['a'], 'and its checks stopped')
})
