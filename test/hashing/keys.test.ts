import { test } from 'tap'
import type { FastifyRequest } from 'fastify'
import { startUpstreams } from '../helpers/demo-upstream'
import type { PoolOptions } from '../../lib/options/resolve'
import { serve } from '../affinity/fixtures'
import { sequence } from '../helpers/gateway'

const IDS = ['a', 'b', 'c', 'd', 'e']

function tenantOf (request: FastifyRequest): string | undefined {
  const tenant = request.headers['x-tenant']
  return typeof tenant === 'string' ? tenant.split(':')[0] : undefined
}

for (const algorithm of ['consistent-hash', 'maglev'] as const) {
  test(`${algorithm}: every key source maps a key to the same target`, async (t) => {
    const ups = await startUpstreams(IDS)
    const targets = ups.map((u) => ({ url: u.url, id: u.id }))
    const pool = (hashKey: PoolOptions['hashKey']): { upstream: PoolOptions } => ({ upstream: { targets, algorithm, hashKey } })
    const { gw, client } = await serve(t, ups, {}, (app) => {
      app.get('/header/*', { config: pool({ header: 'X-User' }) }, app.lb.forward)
      app.get('/cookie/*', { config: pool({ cookie: 'uid' }) }, app.lb.forward)
      app.get('/query/*', { config: pool({ query: 'user' }) }, app.lb.forward)
      app.get('/param/:user/*', { config: pool({ param: 'user' }) }, app.lb.forward)
      app.get('/function/*', { config: pool(tenantOf) }, app.lb.forward)
      app.get('/ip/*', { config: pool('ip') }, app.lb.forward)
    }, { trustProxy: true })

    const owners: string[] = []
    for (let i = 0; i < 30; i++) {
      const key = `10.0.0.${i}`
      const seen = [
        ...await sequence(client, gw.url + '/header/x', 2, { 'x-user': key }),
        ...await sequence(client, gw.url + '/cookie/x', 2, { cookie: `other=1; uid=${key}` }),
        ...await sequence(client, gw.url + `/query/x?user=${key}&user=ignored`, 2),
        ...await sequence(client, gw.url + `/param/${key}/x`, 2),
        ...await sequence(client, gw.url + '/function/x', 2, { 'x-tenant': `${key}:shard` }),
        ...await sequence(client, gw.url + '/ip/x', 2, { 'x-forwarded-for': key })
      ]
      t.equal(new Set(seen).size, 1, `${key}: one target whatever the source (${seen.join(',')})`)
      owners.push(seen[0])
    }
    t.same([...new Set(owners)].sort(), IDS, 'keys spread over every target')
  })

  test(`${algorithm}: a request without a key falls back to round robin`, async (t) => {
    const ups = await startUpstreams(IDS)
    const { gw, client } = await serve(t, ups, {
      pools: { main: { targets: ups.map((u) => ({ url: u.url, id: u.id })), algorithm, hashKey: { header: 'x-user' } } }
    })
    const keyed = await sequence(client, gw.url + '/x', 3, { 'x-user': 'alice' })
    t.equal(new Set(keyed).size, 1)
    t.same(await sequence(client, gw.url + '/x', 7), ['a', 'b', 'c', 'd', 'e', 'a', 'b'], 'no header: strict rotation')
    t.same(await sequence(client, gw.url + '/x', 3, { 'x-user': '' }), ['c', 'd', 'e'], 'an empty header is no key')
    t.same(await sequence(client, gw.url + '/x', 2, { 'x-user': 'alice' }), keyed.slice(0, 2), 'keyed requests are unaffected')
  })
}

test('hashFallback chooses the algorithm for requests without a key', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  const { gw, client } = await serve(t, ups, {
    pools: {
      main: {
        targets: ups.map((u, i) => ({ url: u.url, id: u.id, weight: [5, 1, 1][i] })),
        algorithm: 'consistent-hash',
        hashKey: { query: 'user' },
        hashFallback: 'weighted-round-robin'
      }
    }
  })
  t.same(await sequence(client, gw.url + '/x', 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a'], 'smooth weighted round robin, 5,1,1')
})

test('a very long key is hashed on its first 1024 characters', async (t) => {
  const ups = await startUpstreams(IDS)
  const { gw, client } = await serve(t, ups, {
    pools: { main: { targets: ups.map((u) => ({ url: u.url, id: u.id })), algorithm: 'consistent-hash', hashKey: { header: 'x-user' } } }
  })
  const prefix = 'k'.repeat(1024)
  const seen = [
    ...await sequence(client, gw.url + '/x', 1, { 'x-user': prefix }),
    ...await sequence(client, gw.url + '/x', 1, { 'x-user': prefix + 'a'.repeat(5000) }),
    ...await sequence(client, gw.url + '/x', 1, { 'x-user': prefix + 'b'.repeat(3000) })
  ]
  t.equal(new Set(seen).size, 1, `${seen.join(',')}`)
})
