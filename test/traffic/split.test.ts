import { test, type Test } from 'tap'
import Fastify from 'fastify'
import lb from '../../lib/index'
import { DemoUpstream } from '../helpers/demo-upstream'
import { Client, startGateway } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { sampleValue } from '../helpers/prom-text'

async function upstreams (t: Test, names: string[]): Promise<DemoUpstream[]> {
  const ups = await Promise.all(names.map(async (n) => await new DemoUpstream(n).start()))
  t.teardown(async () => { for (const u of ups) await u.stop() })
  return ups
}

/** stable: a and b; canary: c. */
function pools (ups: DemoUpstream[]): Record<string, { targets: Array<{ url: string, id: string }> }> {
  return {
    stable: { targets: [{ url: ups[0].url, id: 'a' }, { url: ups[1].url, id: 'b' }] },
    canary: { targets: [{ url: ups[2].url, id: 'c' }] }
  }
}

const poolOf = (servedBy: string | undefined): 'stable' | 'canary' => servedBy === 'c' ? 'canary' : 'stable'

test('a 90/10 split: 10,000 requests land within 1.5 points of 90/10, and the metrics and status page name the pools', async (t) => {
  const ups = await upstreams(t, ['a', 'b', 'c'])
  const gw = await startGateway({ pools: pools(ups) }, (app) => {
    app.all('/api/*', { config: { upstream: { split: [{ pool: 'stable', weight: 90 }, { pool: 'canary', weight: 10 }] } } }, app.lb.forward)
  })
  const client = new Client(32)
  t.teardown(async () => { await client.close(); await gw.close() })

  const counts = { stable: 0, canary: 0 }
  let failed = 0
  for (let round = 0; round < 100; round++) {
    const answers = await Promise.all(Array.from({ length: 100 }, async () => await client.send(gw.url + '/api/x')))
    for (const a of answers) {
      if (a.status !== 200) failed++
      counts[poolOf(a.servedBy)]++
    }
  }
  t.equal(failed, 0, 'every request was answered')
  t.equal(counts.stable + counts.canary, 10_000)
  t.ok(Math.abs(counts.canary / 100 - 10) <= 1.5, `canary took ${counts.canary / 100}% (10 ± 1.5)`)
  t.same(gw.app.lb.split('/api/*').requests, counts, 'the split counted what it sent')

  const metrics = await (await fetch(gw.url + '/metrics')).text()
  t.equal(sampleValue(metrics, 'lb_split_total', { route: '/api/*', pool: 'canary' }), counts.canary)
  t.equal(sampleValue(metrics, 'lb_split_weight', { route: '/api/*', pool: 'stable' }), 90)
  const status = await (await fetch(gw.url + '/lb/status?format=json')).json() as { splits: unknown }
  t.same(status.splits, [{ route: '/api/*', arms: [{ pool: 'stable', weight: 90 }, { pool: 'canary', weight: 10 }], requests: counts }])
  t.match(await (await fetch(gw.url + '/lb/status?format=html')).text(), /<b>\/api\/\*<\/b>: stable 90 \(90\.0%/)
})

test('stick by a key keeps each client on one arm, the same on two replicas; a header match sends all its requests to the canary', async (t) => {
  const ups = await upstreams(t, ['a', 'b', 'c'])
  const upstream = {
    split: [{ pool: 'stable', weight: 50 }, { pool: 'canary', weight: 50 }],
    match: [{ header: 'x-canary', value: 'yes', pool: 'canary' }],
    stick: { header: 'x-user' }
  }
  const routes = (app: import('fastify').FastifyInstance): void => { app.all('/*', { config: { upstream } }, app.lb.forward) }
  const one = await startGateway({ pools: pools(ups) }, routes)
  const two = await startGateway({ pools: { canary: pools(ups).canary, stable: pools(ups).stable } }, routes)
  const client = new Client()
  t.teardown(async () => { await client.close(); await one.close(); await two.close() })

  const arms = new Map<string, Set<string>>()
  for (let u = 0; u < 40; u++) {
    for (const gw of [one, two, one, two]) {
      const res = await client.send(gw.url + '/x', { headers: { 'x-user': `user-${u}` } })
      const seen = arms.get(`user-${u}`) ?? new Set()
      seen.add(poolOf(res.servedBy))
      arms.set(`user-${u}`, seen)
    }
  }
  t.same([...arms.values()].map((s) => s.size), Array(40).fill(1), 'each user stayed on one arm across both replicas')
  const onCanary = [...arms.values()].filter((s) => s.has('canary')).length
  t.ok(onCanary > 10 && onCanary < 30, `users spread over both arms (${onCanary} of 40 on the canary)`)

  for (let i = 0; i < 20; i++) {
    const res = await client.send(one.url + '/x', { headers: { 'x-user': 'user-0', 'x-canary': 'yes' } })
    t.equal(res.servedBy, 'c', `match ${i}: the header sends it to the canary`)
  }
  const other = await client.send(one.url + '/x', { headers: { 'x-canary': 'no' } })
  t.equal(other.status, 200, 'another value of the header does not match')
})

test('weights change at runtime under load without dropping a request', async (t) => {
  const ups = await upstreams(t, ['a', 'b', 'c'])
  const gw = await startGateway({ pools: pools(ups) }, (app) => {
    app.all('/*', { config: { upstream: { split: [{ pool: 'stable', weight: 100 }, { pool: 'canary', weight: 0 }] } } }, app.lb.forward)
  })
  const client = new Client(16)
  t.teardown(async () => { await client.close(); await gw.close() })
  const split = gw.app.lb.split('/*')

  const before = await Promise.all(Array.from({ length: 50 }, async () => await client.send(gw.url + '/x')))
  t.ok(before.every((a) => poolOf(a.servedBy) === 'stable'), 'weight 0 takes nothing')
  const statuses: number[] = []
  const load = (async () => {
    for (let i = 0; i < 30; i++) {
      const answers = await Promise.all(Array.from({ length: 20 }, async () => await client.send(gw.url + '/y')))
      for (const a of answers) statuses.push(a.status)
    }
  })()
  for (const weights of [{ stable: 50, canary: 50 }, { stable: 0, canary: 100 }, { stable: 90, canary: 10 }]) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    split.setWeights(weights)
  }
  await load
  t.equal(statuses.length, 600)
  t.ok(statuses.every((s) => s === 200), 'no request failed while the weights changed')
  split.setWeights({ stable: 0, canary: 1 })
  const after = await Promise.all(Array.from({ length: 20 }, async () => await client.send(gw.url + '/z')))
  t.ok(after.every((a) => a.servedBy === 'c'), 'the next requests follow the new weights at once')
  t.throws(() => split.setWeights({ stable: 0, canary: 0 }), /pool "\/\*": split = .* \(must give at least one arm a weight above 0\)/)
  t.throws(() => split.setWeights({ stable: 1 }), /canary = undefined \(must be given/)
  t.throws(() => split.setWeights({ stable: 1, canary: 1, other: 1 }), /other = 1 \(is not an arm of this split\)/)
  t.same(split.weights, { stable: 0, canary: 1 }, 'a refused change changed nothing')
  for (const pool of ['stable', 'canary']) await assertIdle(t, gw.app.lb.pool(pool), `${pool} after the changes`)
})

test('stick: affinity keeps a client with a pool\'s affinity cookie on that arm', async (t) => {
  const ups = await upstreams(t, ['a', 'b', 'c'])
  const secret = 'k'.repeat(32)
  const gw = await startGateway({
    pools: {
      stable: { ...pools(ups).stable, affinity: { secret } },
      canary: { ...pools(ups).canary, affinity: { secret } }
    }
  }, (app) => {
    app.all('/*', { config: { upstream: { split: [{ pool: 'stable', weight: 50 }, { pool: 'canary', weight: 50 }], stick: 'affinity' } } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close() })

  for (let c = 0; c < 10; c++) {
    const first = await client.send(gw.url + '/x')
    const cookie = String(first.headers['set-cookie']).split(';')[0]
    const arm = poolOf(first.servedBy)
    for (let i = 0; i < 5; i++) {
      const next = await client.send(gw.url + '/x', { headers: { cookie } })
      t.equal(poolOf(next.servedBy), arm, `client ${c} request ${i} stays on its arm (${arm})`)
    }
  }
})

test('bad splits fail at ready with FST_LB_INVALID_OPTION naming the route, the field and the value', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['an unknown pool', { split: [{ pool: 'stable', weight: 1 }, { pool: 'nope', weight: 1 }] }, /pool "\/s": config\.upstream\.split\[1\]\.pool = "nope" \(names no pool/],
    ['a negative weight', { split: [{ pool: 'stable', weight: -1 }] }, /config\.upstream\.split\[0\]\.weight = -1/],
    ['no weight above 0', { split: [{ pool: 'stable', weight: 0 }] }, /config\.upstream\.split = .* \(must give at least one arm a weight above 0\)/],
    ['a pool twice', { split: [{ pool: 'stable', weight: 1 }, { pool: 'stable', weight: 2 }] }, /names the pool "stable" twice/],
    ['an empty split', { split: [] }, /config\.upstream\.split = \[\] \(must be a non-empty array/],
    ['a match without a source', { split: [{ pool: 'stable', weight: 1 }], match: [{ pool: 'stable' }] }, /config\.upstream\.match\[0\]/],
    ['a match to an unknown pool', { split: [{ pool: 'stable', weight: 1 }], match: [{ query: 'v', pool: 'x' }] }, /config\.upstream\.match\[0\]\.pool = "x"/],
    ['an unknown key', { split: [{ pool: 'stable', weight: 1 }], sticky: 'ip' }, /config\.upstream\.sticky = "ip" \(is not a split option\)/],
    ['a bad stick', { split: [{ pool: 'stable', weight: 1 }], stick: 42 }, /stick = 42/]
  ]
  for (const [what, upstream, message] of cases) {
    const app = Fastify()
    await app.register(lb, { pools: { stable: { targets: ['http://127.0.0.1:9'] } } })
    let error: unknown
    try {
      app.get('/s', { config: { upstream: upstream as never } }, app.lb.forward)
      await app.ready()
    } catch (err) {
      error = err
    }
    t.match(error, { code: 'FST_LB_INVALID_OPTION', message }, what)
    await app.close()
  }
})
