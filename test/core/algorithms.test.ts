import { test, type Test } from 'tap'
import { pickFor } from '../helpers/pick'
import type { FastifyRequest } from 'fastify'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, count, sequence, startGateway } from '../helpers/gateway'
import type { PoolOptions } from '../../lib/options/resolve'

async function setup (t: Test, ids: string[], pool: Omit<PoolOptions, 'targets'>, weights?: number[]) {
  const ups = await startUpstreams(ids)
  const gw = await startGateway({
    pools: { main: { ...pool, targets: ups.map((u, i) => ({ url: u.url, id: u.id, weight: weights?.[i] ?? 1 })) } }
  })
  const client = new Client()
  t.teardown(async () => {
    await client.close()
    await gw.close()
    await Promise.all(ups.map(async (u) => u.stop()))
  })
  return { ups, gw, client }
}

test('round robin rotates strictly over the targets', async (t) => {
  const { gw, client } = await setup(t, ['a', 'b', 'c'], { algorithm: 'round-robin' })
  t.same(await sequence(client, gw.url + '/x', 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a'])
})

test('smooth weighted round robin interleaves as nginx does (5,1,1)', async (t) => {
  const { gw, client } = await setup(t, ['a', 'b', 'c'], { algorithm: 'weighted-round-robin' }, [5, 1, 1])
  t.same(await sequence(client, gw.url + '/x', 14), ['a', 'a', 'b', 'a', 'c', 'a', 'a', 'a', 'a', 'b', 'a', 'c', 'a', 'a'])
})

test('least connections avoids a slow upstream while it is busy', async (t) => {
  const { ups, gw, client } = await setup(t, ['fast1', 'fast2', 'slow'], { algorithm: 'least-connections' })
  const slow = ups[2]
  slow.mode = 'slow'
  slow.delayMs = 300
  // 4 clients in parallel, 15 requests each: the slow upstream holds a connection for
  // 300 ms, so the others answer many requests while it finishes one.
  const served: string[] = []
  await Promise.all([0, 1, 2, 3].map(async () => {
    served.push(...await sequence(client, gw.url + '/x', 15))
  }))
  const counts = count(served)
  t.equal(served.length, 60)
  t.ok((counts.slow ?? 0) <= 8, `slow upstream got ${counts.slow ?? 0} of 60`)
  t.ok((counts.fast1 ?? 0) >= 20 && (counts.fast2 ?? 0) >= 20, `fast upstreams share the rest: ${JSON.stringify(counts)}`)
  t.equal(gw.app.lb.pool('main').inFlight, 0)
})

test('least connections rotates among idle equal targets', async (t) => {
  const { gw, client } = await setup(t, ['a', 'b', 'c'], { algorithm: 'least-connections' })
  t.same(await sequence(client, gw.url + '/x', 6), ['a', 'b', 'c', 'a', 'b', 'c'])
})

test('p2c-ewma sends clearly more to a fast upstream than to a slow one', async (t) => {
  const { ups, gw, client } = await setup(t, ['fast', 'slow'], { algorithm: 'p2c-ewma' })
  ups[1].mode = 'slow'
  ups[1].delayMs = 60
  const counts = count(await sequence(client, gw.url + '/x', 60))
  // Two targets: every pick compares both, so after the first slow answer the slow
  // one is taken only once its decayed score falls below the fast one's.
  t.ok((counts.fast ?? 0) >= 45, `fast got ${counts.fast ?? 0} of 60`)
  t.ok((counts.slow ?? 0) >= 1, 'the slow upstream is still probed')
})

test('random spreads requests over every target', async (t) => {
  const { gw, client } = await setup(t, ['a', 'b', 'c'], { algorithm: 'random' })
  const counts = count(await sequence(client, gw.url + '/x', 300))
  // Expected 100 each; a binomial(300, 1/3) stays within 100 +/- 35 with probability > 0.9999.
  for (const id of ['a', 'b', 'c']) t.ok(counts[id] >= 65 && counts[id] <= 135, `${id}: ${counts[id]}`)
})

test('consistent hash: the same key always reaches the same target', async (t) => {
  const { gw, client } = await setup(t, ['a', 'b', 'c', 'd', 'e'], { algorithm: 'consistent-hash', hashKey: { header: 'x-user-id' } })
  const first: Record<string, string> = {}
  for (let i = 0; i < 20; i++) {
    const user = `user-${i}`
    const seen = await sequence(client, gw.url + '/x', 3, { 'x-user-id': user })
    t.equal(new Set(seen).size, 1, `${user} always reaches one target`)
    first[user] = seen[0]
  }
  t.ok(new Set(Object.values(first)).size >= 3, 'different users spread over targets')
  // No key: falls back to round robin over all five.
  t.same(new Set(await sequence(client, gw.url + '/x', 5)).size, 5)
})

function fakeRequest (key: string): FastifyRequest {
  return { headers: { 'x-user-id': key }, ip: '127.0.0.1' } as unknown as FastifyRequest
}

test('consistent hash: 10k keys spread within 15% of even, and removing 1 of 5 moves about 1/5', async (t) => {
  const { ups, gw } = await setup(t, ['a', 'b', 'c', 'd', 'e'], { algorithm: 'consistent-hash', hashKey: { header: 'x-user-id' } })
  const pool = gw.app.lb.pool('main')
  const before = new Map<string, string>()
  for (let i = 0; i < 10000; i++) before.set(`k${i}`, pickFor(pool, fakeRequest(`k${i}`))!.id)
  const spread = count([...before.values()])
  for (const u of ups) t.ok(Math.abs(spread[u.id] - 2000) <= 300, `${u.id} holds ${spread[u.id]} keys`)
  await pool.remove('c')
  let moved = 0
  let betweenSurvivors = 0
  for (const [key, was] of before) {
    const now = pickFor(pool, fakeRequest(key))!.id
    if (now !== was) {
      moved++
      if (was !== 'c') betweenSurvivors++
    }
  }
  t.ok(moved >= 1700 && moved <= 2300, `moved ${moved} of 10000`)
  t.equal(moved, spread.c, 'exactly the keys of the removed target moved')
  t.equal(betweenSurvivors, 0, 'no key moved between two surviving targets')
})

test('ip hash is stable per client address, IPv4 and IPv6', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c', 'd'])
  const gw = await startGateway(
    { pools: { main: { algorithm: 'ip-hash', targets: ups.map((u) => ({ url: u.url, id: u.id })) } } },
    undefined,
    { trustProxy: '127.0.0.1' }
  )
  const client = new Client()
  t.teardown(async () => {
    await client.close()
    await gw.close()
    await Promise.all(ups.map(async (u) => u.stop()))
  })
  const addresses = ['203.0.113.7', '198.51.100.20', '2001:db8::1', '2001:db8::2', '2001:db8:0:0:1::5', '192.0.2.44', '2001:db8:ffff::99', '10.1.2.3']
  const chosen = new Set<string>()
  for (const ip of addresses) {
    const seen = await sequence(client, gw.url + '/x', 4, { 'x-forwarded-for': ip })
    t.equal(new Set(seen).size, 1, `${ip} always reaches one target`)
    chosen.add(seen[0])
  }
  t.ok(chosen.size >= 2, 'different addresses spread over targets')
  // The whole address counts: two IPv6 addresses of the same /64 are hashed apart.
  const pool = gw.app.lb.pool('main')
  const picks = new Set<string>()
  for (let i = 0; i < 50; i++) {
    picks.add(pickFor(pool, { ip: `2001:db8::${i.toString(16)}`, headers: {} })!.id)
  }
  t.ok(picks.size >= 3, 'addresses that differ only in the last group spread too')
})
