import { test, type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import type { FastifyServerOptions } from 'fastify'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import { Client, sequence, startGateway, type Gateway } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { rawRequest } from '../helpers/raw-http'
import type { PoolOptions } from '../../lib/options/resolve'

async function setup (t: Test, pool: Omit<PoolOptions, 'targets'>, server: FastifyServerOptions = {}): Promise<{ ups: DemoUpstream[], gw: Gateway, client: Client, port: number }> {
  const ups = await startUpstreams(['a', 'b', 'c', 'd'])
  const gw = await startGateway({ pools: { main: { ...pool, targets: ups.map((u) => ({ url: u.url, id: u.id })) } } }, undefined, server)
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  return { ups, gw, client, port: (gw.app.server.address() as AddressInfo).port }
}

/** Who serves each of `n` requests with these headers; every one must be answered 200. */
async function servedBy (t: Test, client: Client, url: string, headers: Record<string, string>, n = 3): Promise<string> {
  const seen = await sequence(client, url, n, headers)
  t.equal(new Set(seen).size, 1, `one target for ${JSON.stringify(headers).slice(0, 60)}: ${seen.join(' ')}`)
  return seen[0]
}

test('header hash keys: huge, empty, unicode and repeated keys are served, and each keeps its target', async (t) => {
  const { ups, gw, client, port } = await setup(t, { algorithm: 'consistent-hash', hashKey: { header: 'x-user' } })
  const url = gw.url + '/x'

  // Keys are cut at 1024 characters: two long keys that share their first 1024 go together, whatever follows.
  const long = 'k'.repeat(1024)
  const first = await servedBy(t, client, url, { 'x-user': long + 'a'.repeat(7000) })
  t.equal(await servedBy(t, client, url, { 'x-user': long + 'b'.repeat(7000) }), first, 'only the first 1024 characters count')
  t.equal(await servedBy(t, client, url, { 'x-user': long }), first)

  // An empty key is no key: the fallback (round robin) spreads such requests.
  t.same(new Set(await sequence(client, url, 4, { 'x-user': '' })).size, 4, 'an empty key falls back to round robin')

  // Header bytes outside ASCII (UTF-8 as a browser would send them), read by Node as latin1: stable all the same.
  const unicode: string[] = []
  for (const key of ['żółw', '用户', '🙂', 'e\u0301']) {
    const bytes = Buffer.from(key, 'utf8').toString('latin1')
    const seen = new Set<string>()
    for (let i = 0; i < 3; i++) {
      const res = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: gw', `X-User: ${bytes}`])
      t.equal(res.status, 200, `${key}: served`)
      seen.add(/x-served-by: (\w+)/i.exec(res.head)?.[1] ?? '-')
    }
    t.equal(seen.size, 1, `${key}: one target`)
    unicode.push([...seen][0])
  }

  // A header sent twice is joined by Node ('a, b'): a key of its own, as stable as any other.
  const twice = async (): Promise<string> => {
    const res = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: gw', 'X-User: alice', 'X-User: bob'])
    t.equal(res.status, 200)
    return /x-served-by: (\w+)/i.exec(res.head)?.[1] ?? '-'
  }
  t.equal(await twice(), await servedBy(t, client, url, { 'x-user': 'alice, bob' }), 'repeated headers hash as their joined value')
  t.equal(await twice(), await twice())

  // Beyond Node's header size limit (16 KiB) the request never reaches the plugin; the gateway stays up.
  const huge = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: gw', `X-User: ${'z'.repeat(20_000)}`])
  t.equal(huge.status, 431)
  t.equal((await client.send(url, { headers: { 'x-user': 'after' } })).status, 200, 'the gateway serves the next request')

  const ids = new Set(ups.map((u) => u.id))
  t.ok(unicode.every((id) => ids.has(id)), 'every key reached a target of the pool')
  await assertIdle(t, gw.app.lb.pool('main'), 'after odd keys')
})

test('query, cookie and function keys: repeated, empty and encoded values', async (t) => {
  const { gw, client } = await setup(t, { algorithm: 'maglev', hashKey: { query: 'u' } })
  const at = async (query: string): Promise<string> => (await sequence(client, `${gw.url}/x?${query}`, 2)).join(' ')
  // A repeated parameter hashes as its first value; a percent-encoded key as its decoded text.
  t.equal(await at('u=alice&u=bob'), await at('u=alice'))
  t.equal(await at('u=%E2%9C%93'), await at('u=✓'))
  t.equal(await at('u=' + 'q'.repeat(5000)), await at('u=' + 'q'.repeat(1024)), 'cut at 1024 characters')
  t.equal(new Set((await at('u=')).split(' ')).size, 2, 'an empty value falls back to round robin')
  t.equal(new Set((await at('v=1')).split(' ')).size, 2, 'so does a missing one')

  const cookies = await setup(t, { algorithm: 'consistent-hash', hashKey: { cookie: 'sid' } })
  const by = async (cookie: string): Promise<string> => (await sequence(cookies.client, cookies.gw.url + '/x', 2, { cookie })).join(' ')
  t.equal(await by('sid=one; sid=two'), await by('sid=one'), 'the first of repeated cookies counts')
  t.equal(new Set((await by('sid=%E2%9C%93')).split(' ')).size, 1, 'an encoded cookie is decoded and keeps its target')
  t.equal(new Set((await by('sid="quoted value"')).split(' ')).size, 1, 'so does a quoted one')
  t.equal(new Set((await by('sid=%zz%00')).split(' ')).size, 1, 'a malformed escape is a key like any other')
  t.equal(new Set((await by('sid=')).split(' ')).size, 2, 'an empty cookie falls back')
  await assertIdle(t, gw.app.lb.pool('main'), 'query keys')
  await assertIdle(t, cookies.gw.app.lb.pool('main'), 'cookie keys')
})

test('X-Forwarded-For is ignored unless trustProxy says otherwise', async (t) => {
  const forwardedFor = Array.from({ length: 24 }, (_, i) => `203.0.113.${i + 1}`)

  const untrusted = await setup(t, { algorithm: 'ip-hash' })
  const seen = new Set<string>()
  for (const ip of forwardedFor) seen.add((await untrusted.client.send(untrusted.gw.url + '/x', { headers: { 'x-forwarded-for': ip } })).servedBy ?? '-')
  t.equal(seen.size, 1, 'without trustProxy every request is the loopback client, whatever it claims')

  const trusted = await setup(t, { algorithm: 'ip-hash' }, { trustProxy: '127.0.0.1' })
  const spread = new Set<string>()
  for (const ip of forwardedFor) spread.add(await servedBy(t, trusted.client, trusted.gw.url + '/x', { 'x-forwarded-for': ip }, 2))
  t.ok(spread.size >= 2, `with the proxy trusted, the forwarded address counts (${spread.size} targets)`)
  // Only the hop the trusted proxy saw counts: what a client writes further left does not.
  const real = await servedBy(t, trusted.client, trusted.gw.url + '/x', { 'x-forwarded-for': '198.51.100.7' }, 1)
  for (const forged of ['10.0.0.1', '203.0.113.99, 192.0.2.1', 'garbage', '', '::1']) {
    t.equal(await servedBy(t, trusted.client, trusted.gw.url + '/x', { 'x-forwarded-for': `${forged}, 198.51.100.7` }, 1), real, `"${forged}" in front changes nothing`)
  }
  // Nonsense in the header is served, not crashed on.
  for (const value of ['not-an-ip', ',,,', '999.1.1.1', '[::1]:80', 'x'.repeat(4000)]) {
    t.equal((await trusted.client.send(trusted.gw.url + '/x', { headers: { 'x-forwarded-for': value } })).status, 200, `X-Forwarded-For: ${value.slice(0, 20)}`)
  }
})
