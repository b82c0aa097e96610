import { test, type Test } from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import type { EtcdDiscoveryOptions } from '../../lib/discovery/options'
import type { DiscoveryEvent } from '../../lib/discovery/provider'
import type { Pool } from '../../lib/pool/pool'
import { makeCertificates } from '../helpers/certs'
import { membershipUnderLoad, memberUrls, nextDiscovery, urlsOf } from '../helpers/discovery-scenario'
import { Etcd, etcdPublisher, type EtcdOptions } from '../helpers/etcd'
import { requireProgram } from '../helpers/external'
import { startGateway, until } from '../helpers/gateway'
import { LogLines } from '../helpers/health'
import { startupError } from '../helpers/startup'
import { TcpProxy } from '../helpers/tcp-proxy'

const PREFIX = '/services/users/'
const ROOT_PASSWORD = 'root-secret-7c1e0d'
const READER_PASSWORD = 'reader-secret-3f9a2b'
const WRONG_PASSWORD = 'wrong-secret-51d8e4'

function etcdDiscovery (url: string, extra: Partial<EtcdDiscoveryOptions> = {}): EtcdDiscoveryOptions {
  return { type: 'etcd', url, prefix: PREFIX, timeout: 2000, retryInterval: 20, maxRetryInterval: 200, ...extra }
}

const reader = { username: 'gateway', password: READER_PASSWORD }

/** A real etcd with authentication on, and a user "gateway" whose only permission is to read PREFIX. Null when etcd is not installed (the test then returns). */
async function startAuthEtcd (t: Test, options: EtcdOptions = {}): Promise<Etcd | null> {
  const program = requireProgram(t, 'etcd', 'etcd (Debian package etcd-server)')
  if (program === null) return null
  const etcd = await Etcd.start(t, program, options)
  await etcd.enableAuth(ROOT_PASSWORD)
  await etcd.addReader(reader.username, reader.password, PREFIX)
  return etcd
}

/** Every 'discovery' event of a pool from now on. */
function eventsOf (pool: Pool): DiscoveryEvent[] {
  const events: DiscoveryEvent[] = []
  pool.on('discovery', (e: DiscoveryEvent) => { events.push(e) })
  return events
}

/**
 * An etcd with authentication on, reached through a TCP relay the test can
 * cut, and a gateway whose pool main follows PREFIX as user gateway; the
 * prefix lists upstream a. Null when etcd is not installed.
 */
async function followThroughProxy (t: Test, options: EtcdOptions): Promise<{ etcd: Etcd, proxy: TcpProxy, ups: DemoUpstream[], pool: Pool } | null> {
  const etcd = await startAuthEtcd(t, options)
  if (etcd === null) return null
  const proxy = await new TcpProxy(Number(new URL(etcd.url).port)).start()
  t.teardown(async () => { await proxy.close() })
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  await etcd.put(PREFIX + 'a', { url: ups[0].url, id: 'a' })
  const gw = await startGateway({ pools: { main: { discovery: etcdDiscovery(proxy.url, reader) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'the gateway is ready with a')
  return { etcd, proxy, ups, pool }
}

test('etcd auth: a user allowed to read the prefix follows it under load; a wrong password gets nothing, logged without the password', async (t) => {
  const etcd = await startAuthEtcd(t)
  if (etcd === null) return
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const publish = etcdPublisher(etcd, PREFIX)
  await publish([{ upstream: ups[0], weight: 1 }, { upstream: ups[1], weight: 1 }])
  await t.rejects(etcd.call('/v3/kv/range', { key: Buffer.from(PREFIX).toString('base64') }, null), /answered 400: .*user name is empty/, 'etcd refuses reads without a token')

  const lines = new LogLines()
  const gw = await startGateway({
    pools: {
      main: { algorithm: 'weighted-round-robin', retry: false, discovery: etcdDiscovery(etcd.url, reader) },
      denied: { discovery: etcdDiscovery(etcd.url, { ...reader, password: WRONG_PASSWORD }) }
    }
  }, undefined, { logger: { level: 'info', stream: lines } })
  t.teardown(gw.close)
  const denied = gw.app.lb.pool('denied')
  t.equal(denied.targets.length, 0, 'ready() completed; the wrong password brought no target')
  t.match(lines.matching('discovery failed'), [{
    level: 40,
    pool: 'denied',
    provider: 'etcd',
    error: /^etcd at http:\/\/127\.0\.0\.1:\d+: authentication as user "gateway" failed: answered 400: .*invalid user ID or password/
  }], 'the failure is logged once, naming the user and what etcd said')

  const failures = eventsOf(denied)
  const started = Date.now()
  await membershipUnderLoad(t, gw, 'main', [ups[0], ups[1], ups[2]], publish, { weights: true })
  const seconds = (Date.now() - started) / 1000
  t.equal(denied.targets.length, 0, 'still nothing for the wrong password')
  t.ok(failures.length >= 2 && failures.every((e) => !e.ok), `the wrong password was tried again (${failures.length} times)`)
  // Backing off from 20 ms to 200 ms: at most about 5 attempts a second, not a tight loop.
  t.ok(failures.length <= 8 + seconds * 5, `${failures.length} attempts in ${seconds.toFixed(1)} s`)
  const logged = JSON.stringify(lines.lines)
  t.notOk(logged.includes(READER_PASSWORD) || logged.includes(WRONG_PASSWORD) || logged.includes(ROOT_PASSWORD), 'no password in any log line')
})

test('etcd auth: a token that expired while the watch ran is renewed at the next read; a changed password keeps the last list', async (t) => {
  // Simple tokens expire after --auth-token-ttl seconds without use; a running watch does not use its token.
  const setup = await followThroughProxy(t, { authTokenTtl: 2 })
  if (setup === null) return
  const { etcd, proxy, ups, pool } = setup
  t.equal(proxy.count('/v3/auth/authenticate'), 1, 'one authentication')

  // A token of the test's own, taken now and unused like the provider's, shows when tokens have expired.
  const token = await etcd.authenticate(reader.username, reader.password)
  await new Promise((resolve) => setTimeout(resolve, 3500))
  await t.rejects(etcd.call('/v3/kv/range', { key: Buffer.from(PREFIX).toString('base64') }, token), /answered 401: .*invalid auth token/, 'tokens have expired')

  await etcd.put(PREFIX + 'b', { url: ups[1].url, id: 'b' })
  await until(() => pool.targets.length === 2, 5000, 'b, through the watch opened before the token expired')

  // The watch's connection is cut: the provider reads the prefix again, with a token etcd no longer knows.
  const events = eventsOf(pool)
  proxy.cut()
  await etcd.put(PREFIX + 'c', { url: ups[2].url, id: 'c' })
  await until(() => pool.targets.length === 3, 5000, 'c, read after the cut')
  t.same(memberUrls(pool), urlsOf(ups))
  t.ok(proxy.statuses.includes(401), 'etcd refused the expired token (401)')
  t.equal(proxy.count('/v3/auth/authenticate'), 2, 'the provider authenticated again, once')
  t.notOk(events.some((e) => /auth/.test(e.error ?? '')), `no failure was about authentication: ${JSON.stringify(events.map((e) => e.error))}`)

  // A password changed behind the gateway's back: etcd drops the user's tokens; the gateway keeps its list and retries.
  await etcd.call('/v3/auth/user/changepw', { name: reader.username, password: 'another-secret' })
  const refused = nextDiscovery(pool, (e) => !e.ok && /authentication as user "gateway" failed/.test(e.error ?? ''))
  proxy.cut()
  t.match(await refused, { ok: false, targets: 3 }, 'the old password is refused; the last list stays')
  t.same(memberUrls(pool), urlsOf(ups))
  const recovered = nextDiscovery(pool, (e) => e.ok)
  await etcd.call('/v3/auth/user/changepw', { name: reader.username, password: reader.password })
  t.match(await recovered, { ok: true, targets: 3 }, 'the password restored, the next retry gets in')
})

test('etcd auth with JWT tokens: a token from before a change of users, or past its ttl, is renewed at the next read', async (t) => {
  const setup = await followThroughProxy(t, { jwtTtl: 2 })
  if (setup === null) return
  const { etcd, proxy, ups, pool } = setup
  t.match(await etcd.authenticate(reader.username, reader.password), /^eyJ/, 'etcd gives JWTs')
  const events = eventsOf(pool)

  // A new user moves etcd's auth revision on: JWTs issued before are refused ("revision of auth store is old").
  await etcd.addReader('other', 'other-secret', '/other/')
  proxy.cut()
  await etcd.put(PREFIX + 'b', { url: ups[1].url, id: 'b' })
  await until(() => pool.targets.length === 2, 5000, 'b, read with a new token')
  t.equal(proxy.count('/v3/auth/authenticate'), 2, 'authenticated again after the change of users')

  // Past the JWT's ttl.
  await new Promise((resolve) => setTimeout(resolve, 2500))
  proxy.cut()
  await etcd.put(PREFIX + 'c', { url: ups[2].url, id: 'c' })
  await until(() => pool.targets.length === 3, 5000, 'c, read with a new token')
  t.equal(proxy.count('/v3/auth/authenticate'), 3, 'authenticated again after the ttl')
  t.ok(proxy.statuses.includes(401), 'etcd refused the expired JWT (401)')
  t.notOk(events.some((e) => /auth/.test(e.error ?? '')), `no failure was about authentication: ${JSON.stringify(events.map((e) => e.error))}`)
})

test('etcd auth: a watch cancelled with "permission denied" drops the token; the next attempt authenticates again', async (t) => {
  const ups = await startUpstreams(['a'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  // An etcd gateway that gives token-1, token-2, ...; reads need the latest; the first watch is refused as etcd refuses one whose token it no longer accepts.
  let tokens = 0
  const watchTokens: Array<string | undefined> = []
  const open = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      }
      if (req.url === '/v3/auth/authenticate') return send(200, { header: {}, token: `token-${++tokens}` })
      if (req.headers.authorization !== `token-${tokens}`) return send(401, { error: 'etcdserver: invalid auth token', code: 16 })
      if (req.url === '/v3/kv/range') {
        const value = Buffer.from(JSON.stringify({ url: ups[0].url })).toString('base64')
        return send(200, { header: { revision: '7' }, kvs: [{ key: Buffer.from(PREFIX + 'a').toString('base64'), value }] })
      }
      watchTokens.push(req.headers.authorization)
      res.writeHead(200, { 'content-type': 'application/json' })
      if (watchTokens.length === 1) {
        const reason = 'rpc error: code = PermissionDenied desc = etcdserver: permission denied'
        res.write(JSON.stringify({ result: { header: {}, created: true, canceled: true, cancel_reason: reason } }) + '\n')
      } else {
        res.write(JSON.stringify({ result: { header: {}, created: true } }) + '\n')
      }
      open.add(res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(async () => {
    for (const res of open) res.end()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const gw = await startGateway({ pools: { main: { discovery: etcdDiscovery(url, reader) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf(ups))
  await until(() => watchTokens.length === 2, 5000, 'a second watch')
  t.same(watchTokens, ['token-1', 'token-2'], 'the watch after the refusal carries a new token')
  t.equal(tokens, 2, 'one authentication per watch, no more')
  t.same(memberUrls(pool), urlsOf(ups), 'the list stayed')
})

test('etcd over https: the certificate is verified by default; tls.ca trusts it; --client-cert-auth takes tls.cert and tls.key', async (t) => {
  const program = requireProgram(t, 'etcd', 'etcd (Debian package etcd-server)')
  if (program === null) return
  const certs = await makeCertificates(t)
  const [server, mutual] = await Promise.all([
    Etcd.start(t, program, { tls: { certs } }),
    Etcd.start(t, program, { tls: { certs, clientCertAuth: true } })
  ])
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  for (const etcd of [server, mutual]) await etcd.put(PREFIX + 'a', { url: ups[0].url, id: 'a' })
  const { ca } = certs
  const client = { ca, cert: certs.client.cert, key: certs.client.key }
  const lines = new LogLines()
  const gw = await startGateway({
    pools: {
      untrusted: { discovery: etcdDiscovery(server.url) },
      trusted: { discovery: etcdDiscovery(server.url, { tls: { ca } }) },
      unverified: { discovery: etcdDiscovery(server.url, { tls: { rejectUnauthorized: false } }) },
      named: { discovery: etcdDiscovery(server.url, { tls: { ca, servername: 'etcd.test' } }) },
      misnamed: { discovery: etcdDiscovery(server.url, { tls: { ca, servername: 'other.test' } }) },
      authOff: { discovery: etcdDiscovery(server.url, { tls: { ca }, ...reader }) },
      noClientCert: { discovery: etcdDiscovery(mutual.url, { tls: { ca } }) },
      clientCert: { discovery: etcdDiscovery(mutual.url, { tls: client }) }
    }
  }, () => {}, { logger: { level: 'warn', stream: lines } })
  t.teardown(gw.close)
  const targets = (pool: string): number => gw.app.lb.pool(pool).targets.length
  const errorOf = (pool: string): string => String(lines.matching('discovery failed').find((l) => l.pool === pool)?.error)
  t.equal(targets('untrusted'), 0, 'a certificate signed by an unknown CA is refused')
  t.match(errorOf('untrusted'), /^etcd at https:\/\/127\.0\.0\.1:\d+: unable to verify the first certificate/)
  t.equal(targets('trusted'), 1, 'trusted with tls.ca')
  t.equal(targets('unverified'), 1, 'rejectUnauthorized: false takes any certificate')
  t.equal(targets('named'), 1, 'servername: a name the certificate carries')
  t.equal(targets('misnamed'), 0, 'servername: the certificate must carry that name')
  t.match(errorOf('misnamed'), /does not match certificate's altnames/)
  t.equal(targets('authOff'), 1, 'credentials for an etcd without authentication: read without a token')
  t.match(lines.matching('authentication turned off'), [{ level: 40, pool: 'authOff', provider: 'etcd' }])
  t.equal(targets('noClientCert'), 0, 'etcd with --client-cert-auth refuses a client without a certificate')
  t.match(errorOf('noClientCert'), /^etcd at https:/)
  t.equal(targets('clientCert'), 1, 'and takes one signed by its CA')

  await mutual.put(PREFIX + 'b', { url: ups[1].url, id: 'b' })
  await until(() => targets('clientCert') === 2, 5000, 'the watch over mutual TLS to bring b')
  t.same(memberUrls(gw.app.lb.pool('clientCert')), urlsOf(ups))
  t.notOk(JSON.stringify(lines.lines).includes('PRIVATE KEY'), 'no key in any log line')
})

test('etcd auth and TLS options: a bad value fails startup, naming pool, field and value, never showing a secret', async (t) => {
  const certs = await makeCertificates(t)
  const key = certs.client.key.toString('utf8')
  const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const https = 'https://127.0.0.1:2379'
  const etcd = (extra: Record<string, unknown>): unknown => ({ type: 'etcd', prefix: '/p/', ...extra })
  const cases: Array<[string, unknown, RegExp]> = [
    ['a username without a password', etcd({ username: 'gateway' }), /discovery\.password = undefined \(is required with username\)/],
    ['a password without a username', etcd({ password: READER_PASSWORD }), /discovery\.username = undefined \(is required with password\)/],
    ['an empty password', etcd({ username: 'gateway', password: '' }), /discovery\.password = "<0 characters>" \(must be a non-empty string\)/],
    ['a password that is not a string', etcd({ username: 'gateway', password: 12345678 }), /discovery\.password = "<number>" \(must be a non-empty string\)/],
    ['an empty username', etcd({ username: '', password: READER_PASSWORD }), /discovery\.username = "" \(must be a non-empty string\)/],
    ['tls with an http URL', etcd({ tls: { ca: certs.ca } }), /discovery\.url = "http:\/\/127\.0\.0\.1:2379" \(must be an https URL when tls is set\)/],
    ['tls with an http URL in a list', etcd({ url: [https, 'http://127.0.0.1:2380'], tls: {} }), /discovery\.url\[1\] = "http:\/\/127\.0\.0\.1:2380"/],
    ['tls that is not an object', etcd({ url: https, tls: key }), /discovery\.tls = "<\d+ characters>" \(must be an object with ca, cert, key, rejectUnauthorized, servername\)/],
    ['a cert without a key', etcd({ url: https, tls: { cert: certs.client.cert } }), /discovery\.tls\.key = undefined \(is required with tls\.cert\)/],
    ['a key without a cert', etcd({ url: https, tls: { key } }), /discovery\.tls\.cert = undefined \(is required with tls\.key\)/],
    ['a key of another certificate', etcd({ url: https, tls: { cert: certs.client.cert, key: otherKey } }), /discovery\.tls\.key = "<\d+ characters>" \(is not the private key of tls\.cert\)/],
    ['a key that is not PEM', etcd({ url: https, tls: { cert: certs.client.cert, key: Buffer.from('not a key') } }), /discovery\.tls\.key = "<9 bytes>" \(must hold a private key in PEM/],
    ['a PEM key Node cannot read', etcd({ url: https, tls: { cert: certs.client.cert, key: '-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n' } }), /discovery\.tls\.key = "<\d+ characters>" \(is not a private key Node can read: /],
    ['a CA file path instead of its contents', etcd({ url: https, tls: { ca: certs.caFile } }), /discovery\.tls\.ca = "<\d+ characters>" \(must hold a CA certificate in PEM: the file's contents \(readFileSync\(path\)\), not its path\)/],
    ['a CA that is a number', etcd({ url: https, tls: { ca: 42 } }), /discovery\.tls\.ca = "<number>" \(must be a CA certificate in PEM, as a string or a Buffer\)/],
    ['an empty CA list', etcd({ url: https, tls: { ca: [] } }), /discovery\.tls\.ca = "<array>"/],
    ['a bad CA in a list', etcd({ url: https, tls: { ca: [certs.ca, 'x'] } }), /discovery\.tls\.ca\[1\] = "<1 character>"/],
    ['a cert that is a key', etcd({ url: https, tls: { cert: key, key } }), /discovery\.tls\.cert = "<\d+ characters>" \(is not a certificate Node can read: /],
    ['rejectUnauthorized that is not a boolean', etcd({ url: https, tls: { rejectUnauthorized: 'no' } }), /discovery\.tls\.rejectUnauthorized = "no" \(must be a boolean\)/],
    ['an empty servername', etcd({ url: https, tls: { servername: '' } }), /discovery\.tls\.servername = "" \(must be a non-empty string\)/],
    ['an unknown tls option', etcd({ url: https, tls: { passphrase: READER_PASSWORD } }), /discovery\.tls\.passphrase = "<\d+ characters>" \(is not a tls option of the etcd provider\)/],
    ['a client certificate for Consul', { type: 'consul', service: 's', url: https, tls: { cert: certs.client.cert, key } }, /discovery\.tls\.cert = "<\d+ bytes>" \(is not a tls option of the consul provider\)/],
    ['tls with Consul\'s default http URL', { type: 'consul', service: 's', tls: { ca: certs.ca } }, /discovery\.url = "http:\/\/127\.0\.0\.1:8500" \(must be an https URL when tls is set\)/],
    ['a password for Consul', { type: 'consul', service: 's', password: READER_PASSWORD }, /discovery\.password = "<\d+ characters>" \(is not an option of the consul provider\)/],
    ['a Consul token that is not a string', { type: 'consul', service: 's', token: 1234 }, /discovery\.token = "<number>" \(must be a non-empty string\)/]
  ]
  for (const [what, discovery, message] of cases) {
    const err = await startupError({ pools: { users: { discovery } } })
    t.equal(err.code, 'FST_LB_INVALID_OPTION', what)
    t.match(err.message, /^Invalid option for pool "users": /, `${what}: names the pool`)
    t.match(err.message, message, what)
    for (const secret of [READER_PASSWORD, key, otherKey, 'BEGIN']) {
      if (err.message.includes(secret)) t.fail(`${what}: the message shows a secret: ${err.message}`)
    }
  }
})
