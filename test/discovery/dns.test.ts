import { test } from 'tap'
import { DemoUpstream, startUpstreams } from '../helpers/demo-upstream'
import type { DnsDiscoveryOptions } from '../../lib/discovery/options'
import { membershipUnderLoad, memberUrls, nextDiscovery, urlsOf, type Member } from '../helpers/discovery-scenario'
import { Dnsmasq, type DnsRecords } from '../helpers/dnsmasq'
import { freePort, requireProgram } from '../helpers/external'
import { Client, sequence, startGateway, until } from '../helpers/gateway'

const SRV = '_http._tcp.api.test'

/** SRV records for members: each upstream gets a host name `<id>.test` pointing at 127.0.0.1. */
function srvRecords (members: Member[]): DnsRecords {
  return {
    srv: members.map((m) => ({ name: SRV, target: `${m.upstream.id}.test`, port: m.upstream.port, weight: m.weight })),
    hosts: members.map((m) => [`${m.upstream.id}.test`, '127.0.0.1'])
  }
}

function dnsDiscovery (server: string, extra: Partial<DnsDiscoveryOptions> = {}): DnsDiscoveryOptions {
  return { type: 'dns', name: SRV, resolver: server, interval: 200, minInterval: 20, timeout: 300, tries: 1, ...extra }
}

/** Upstreams on 127.0.0.<2..> sharing one port, for A records with a configured port. */
async function sameport (ids: string[]): Promise<DemoUpstream[]> {
  const port = await freePort()
  return Promise.all(ids.map(async (id, i) => new DemoUpstream(id, `127.0.0.${i + 2}`).start(port)))
}

test('dns SRV: targets added, re-weighted and removed under load, without a failed request', async (t) => {
  const dnsmasq = requireProgram(t, 'dnsmasq', 'dnsmasq')
  if (dnsmasq === null) return
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const dns = await Dnsmasq.start(t, dnsmasq, srvRecords([{ upstream: ups[0], weight: 1 }, { upstream: ups[1], weight: 1 }]))
  const gw = await startGateway({ pools: { main: { algorithm: 'weighted-round-robin', retry: false, discovery: dnsDiscovery(dns.address) } } })
  t.teardown(gw.close)
  // SRV records are configuration to dnsmasq: each change restarts it, so lookups also fail for a moment.
  const publish = async (members: Member[]): Promise<void> => dns.setRecords(srvRecords(members))
  await membershipUnderLoad(t, gw, 'main', [ups[0], ups[1], ups[2]], publish, { weights: true })
})

test('dns A: addresses added and removed under load (records reloaded with SIGHUP), without a failed request', async (t) => {
  const dnsmasq = requireProgram(t, 'dnsmasq', 'dnsmasq')
  if (dnsmasq === null) return
  const ups = await sameport(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const hosts = (members: Member[]): Array<[string, string]> => members.map((m) => ['api.test', m.upstream.url.slice(7, m.upstream.url.lastIndexOf(':'))])
  const dns = await Dnsmasq.start(t, dnsmasq, { hosts: hosts([{ upstream: ups[0], weight: 1 }, { upstream: ups[1], weight: 1 }]) })
  const discovery = dnsDiscovery(dns.address, { name: 'api.test', record: 'A', port: ups[0].port })
  const gw = await startGateway({ pools: { main: { algorithm: 'weighted-round-robin', retry: false, discovery } } })
  t.teardown(gw.close)
  await membershipUnderLoad(t, gw, 'main', [ups[0], ups[1], ups[2]], async (members) => dns.setHosts(hosts(members)), { weights: false })
})

test('dns: the server gone keeps the last list; lookups resume when it is back', async (t) => {
  const dnsmasq = requireProgram(t, 'dnsmasq', 'dnsmasq')
  if (dnsmasq === null) return
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const dns = await Dnsmasq.start(t, dnsmasq, srvRecords([{ upstream: ups[0], weight: 1 }]))
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', discovery: dnsDiscovery(dns.address) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  const client = new Client()
  t.teardown(async () => { await client.close() })

  const failed = nextDiscovery(pool, (e) => !e.ok)
  await dns.stop()
  t.match(await failed, { provider: 'dns', ok: false, targets: 1, error: /DNS lookup of _http\._tcp\.api\.test \(SRV\) failed/ })
  // A few more failed lookups, and the gateway still serves from the last list.
  await nextDiscovery(pool, (e) => !e.ok)
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'the last list stays')
  t.same(await sequence(client, gw.url + '/x', 3), ['a', 'a', 'a'], 'and serves')

  await dns.setRecords(srvRecords([{ upstream: ups[0], weight: 1 }, { upstream: ups[1], weight: 1 }]))
  await until(() => pool.targets.length === 2, 10_000, 'lookups to resume')
  t.same(memberUrls(pool), urlsOf(ups))
})

test('dns: an empty answer keeps the last list by default, or empties the pool with onEmpty: remove', async (t) => {
  const dnsmasq = requireProgram(t, 'dnsmasq', 'dnsmasq')
  if (dnsmasq === null) return
  const ups = await sameport(['a'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const dns = await Dnsmasq.start(t, dnsmasq, { hosts: [['keep.test', '127.0.0.2'], ['remove.test', '127.0.0.2']] })
  const options = (name: string, onEmpty?: 'keep' | 'remove'): DnsDiscoveryOptions =>
    dnsDiscovery(dns.address, { name, record: 'A', port: ups[0].port, onEmpty })
  const gw = await startGateway({ pools: { keep: { discovery: options('keep.test') }, remove: { discovery: options('remove.test', 'remove') } } }, (app) => {
    app.get('/keep/*', { config: { upstream: 'keep' } }, app.lb.forward)
    app.get('/remove/*', { config: { upstream: 'remove' } }, app.lb.forward)
  })
  t.teardown(gw.close)
  const keep = gw.app.lb.pool('keep')
  const remove = gw.app.lb.pool('remove')
  t.equal(keep.targets.length, 1)
  t.equal(remove.targets.length, 1)

  const kept = nextDiscovery(keep, (e) => !e.ok)
  await dns.setHosts([])
  t.match(await kept, { ok: false, targets: 1, error: /no A records for keep\.test; keeping the last list/ })
  await until(() => remove.targets.length === 0, 10_000, 'the remove pool to empty')
  t.equal(keep.targets.length, 1, 'onEmpty keep: the last list stays')

  const client = new Client()
  t.teardown(async () => { await client.close() })
  t.equal((await client.send(gw.url + '/keep/x')).servedBy, 'a')
  const none = await client.send(gw.url + '/remove/x')
  t.equal(none.status, 503, 'onEmpty remove: no target left')
  t.equal(JSON.parse(none.text).code, 'FST_LB_NO_TARGET')
})

test('dns: the TTL brings a change sooner than the interval; only the lowest SRV priority counts', async (t) => {
  const dnsmasq = requireProgram(t, 'dnsmasq', 'dnsmasq')
  if (dnsmasq === null) return
  const ups = await startUpstreams(['a', 'b', 'backup'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const records = (b: boolean): DnsRecords => ({
    srv: [
      { name: SRV, target: 'a.test', port: ups[0].port, priority: 1, weight: 0 },
      ...(b ? [{ name: SRV, target: 'b.test', port: ups[1].port, priority: 1, weight: 7 }] : []),
      { name: SRV, target: 'a.test', port: ups[2].port, priority: 2, weight: 100 }
    ],
    hosts: [['a.test', '127.0.0.1'], ['b.test', '127.0.0.1']]
  })
  const dns = await Dnsmasq.start(t, dnsmasq, records(false), 1)
  // Without the TTL, the next lookup would come after a minute.
  const gw = await startGateway({ pools: { main: { discovery: dnsDiscovery(dns.address, { interval: 60_000 }) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'the priority 2 record is a backup and stays out')
  t.equal(pool.targets[0].weight, 1, 'SRV weight 0 counts as 1')

  await dns.setRecords(records(true))
  await until(() => pool.targets.length === 2, 10_000, 'the 1 s TTL to bring b')
  t.same(memberUrls(pool), urlsOf([ups[0], ups[1]]))
  t.equal(pool.targets.find((x) => x.url === ups[1].url)?.weight, 7, 'the SRV weight is the target weight')
})

test('dns: a server that is down at startup does not hold the gateway; its records arrive when it starts', async (t) => {
  const dnsmasq = requireProgram(t, 'dnsmasq', 'dnsmasq')
  if (dnsmasq === null) return
  const ups = await startUpstreams(['a'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const dns = await Dnsmasq.start(t, dnsmasq, srvRecords([{ upstream: ups[0], weight: 1 }]))
  await dns.stop()
  const gw = await startGateway({ pools: { main: { discovery: dnsDiscovery(dns.address) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.equal(pool.targets.length, 0, 'ready with no target after the first lookup failed')
  await dns.start()
  await until(() => pool.targets.length === 1, 10_000, 'the records to arrive')
  t.same(memberUrls(pool), urlsOf(ups))
})

test('dns AAAA: IPv6 addresses become bracketed target URLs', async (t) => {
  const dnsmasq = requireProgram(t, 'dnsmasq', 'dnsmasq')
  if (dnsmasq === null) return
  let upstream: DemoUpstream
  try {
    upstream = await new DemoUpstream('v6', '::1').start(0)
  } catch (err) {
    t.pass('skipped', { skip: `no IPv6 loopback here (${err instanceof Error ? err.message : String(err)})` })
    return
  }
  t.teardown(async () => { await upstream.stop() })
  const dns = await Dnsmasq.start(t, dnsmasq, { hosts: [['v6.test', '::1']] })
  const gw = await startGateway({ pools: { main: { discovery: dnsDiscovery(dns.address, { name: 'v6.test', record: 'AAAA', port: upstream.port }) } } })
  t.teardown(gw.close)
  t.same(memberUrls(gw.app.lb.pool('main')), [`http://[::1]:${upstream.port}`])
  const client = new Client()
  t.teardown(async () => { await client.close() })
  t.equal((await client.send(gw.url + '/x')).servedBy, 'v6', 'and they serve')
})
