import { test, type Test } from 'tap'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import type { AffinityOptions } from '../../lib/affinity/options'
import { CookieJar } from '../helpers/cookie-jar'
import { Client, startGateway, type Gateway } from '../helpers/gateway'

const OLD = 'the-old-secret-that-is-being-retired'
const NEW = 'the-new-secret-that-takes-over-now'

async function upstreams (t: Test, ids: string[]): Promise<DemoUpstream[]> {
  const ups = await startUpstreams(ids)
  t.teardown(async () => { await Promise.all(ups.map(async (u) => u.stop())) })
  return ups
}

/** A gateway over the upstreams, listed in the given order. */
async function replica (t: Test, ups: DemoUpstream[], order: number[], affinity: AffinityOptions): Promise<Gateway> {
  const targets = order.map((i) => ({ url: ups[i].url, id: ups[i].id }))
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets, affinity } } })
  t.teardown(gw.close)
  return gw
}

function counts (gw: Gateway): unknown {
  return gw.app.lb.pool('main').affinity?.counts
}

test('two replicas with the same secret honour each other\'s cookies, whatever their target order', async (t) => {
  const ups = await upstreams(t, ['a', 'b', 'c'])
  const one = await replica(t, ups, [0, 1, 2], { secret: NEW, maxAge: 3600 })
  const two = await replica(t, ups, [2, 0, 1], { secret: NEW, maxAge: 3600 })
  const client = new Client()
  t.teardown(async () => { await client.close() })

  const jars = Array.from({ length: 12 }, () => new CookieJar(client))
  const first: string[] = []
  for (const [i, jar] of jars.entries()) {
    // Clients arrive at either replica, as behind a plain L4 balancer.
    const res = await jar.send((i % 2 === 0 ? one : two).url + '/x')
    first.push(res.servedBy ?? '-')
  }
  t.same(new Set(first).size, 3, 'new clients spread over every target')
  for (let round = 0; round < 3; round++) {
    for (const [i, jar] of jars.entries()) {
      const res = await jar.send((i % 2 === round % 2 ? two : one).url + '/x')
      t.equal(res.servedBy, first[i], `client ${i} stays on ${first[i]} on the other replica`)
      t.equal(jar.last.length, 0, 'without a new cookie')
    }
  }
  t.same(counts(one), { hit: 18, miss: 6, reassigned: 0, rejected: 0, expired: 0 })
  t.same(counts(two), { hit: 18, miss: 6, reassigned: 0, rejected: 0, expired: 0 })

  // A replica with another secret is not fooled: the cookie is rejected and replaced.
  const other = await replica(t, ups, [0, 1, 2], { secret: OLD })
  await jars[1].send(other.url + '/x')
  t.equal(jars[1].last.length, 1)
  t.same(counts(other), { hit: 0, miss: 0, reassigned: 0, rejected: 1, expired: 0 })
})

test('secret rotation: sign with the first, accept all; old cookies are re-signed in place', async (t) => {
  const ups = await upstreams(t, ['a', 'b', 'c'])
  const before = await replica(t, ups, [0, 1, 2], { secret: OLD })
  const during = await replica(t, ups, [0, 1, 2], { secret: [NEW, OLD] })
  const after = await replica(t, ups, [0, 1, 2], { secret: NEW })
  const client = new Client()
  t.teardown(async () => { await client.close() })

  // Pinned to b (a fresh round robin would give a) by the old secret.
  await new CookieJar(client).send(before.url + '/x')
  const alice = new CookieJar(client)
  t.equal((await alice.send(before.url + '/x')).servedBy, 'b')
  const signedOld = alice.cookies.get('lb_main') ?? ''

  t.equal((await alice.send(during.url + '/x')).servedBy, 'b', 'the old cookie is honoured during rotation')
  t.equal(alice.last.length, 1, 'and replaced by one signed with the new secret')
  const signedNew = alice.cookies.get('lb_main') ?? ''
  t.not(signedNew, signedOld)
  t.equal(signedNew.split('.').slice(0, 2).join('.'), signedOld.split('.').slice(0, 2).join('.'), 'same target, same expiry')
  t.equal((await alice.send(during.url + '/x')).servedBy, 'b')
  t.equal(alice.last.length, 0, 'a cookie signed with the first secret is not re-signed')
  t.same(counts(during), { hit: 2, miss: 0, reassigned: 0, rejected: 0, expired: 0 })

  t.equal((await alice.send(after.url + '/x')).servedBy, 'b', 'the re-signed cookie outlives the old secret')
  t.equal(alice.last.length, 0)

  const late = new CookieJar(client)
  late.cookies.set('lb_main', signedOld)
  t.equal((await late.send(after.url + '/x')).status, 200, 'a cookie only the retired secret signed is ignored')
  t.equal(late.last.length, 1)
  t.same(counts(after), { hit: 1, miss: 0, reassigned: 0, rejected: 1, expired: 0 })
})
