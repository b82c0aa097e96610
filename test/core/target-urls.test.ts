import { test } from 'tap'
import Fastify from 'fastify'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startUpstreams } from '../helpers/demo-upstream'
import lb from '../../lib/index'
import { describeValue } from '../../lib/errors'
import { redactUrl } from '../../lib/options/redact'
import { ConsulServer } from '../helpers/consul'
import { memberUrls, nextDiscovery } from '../helpers/discovery-scenario'
import { startGateway } from '../helpers/gateway'
import { tempDir } from '../helpers/servers'
import { startupError } from '../helpers/startup'

const SECRET = 'hunter2'
const USER = 'admin'

/** The whole of an error as it could end up in a log: message, stack and serialised fields. */
function everything (err: Error): string {
  return [err.message, String(err.stack), JSON.stringify(err)].join('\n')
}

/** URLs with credentials, each refused, and what its message shows instead of them. */
const withCredentials: Array<[string, string, RegExp]> = [
  ['user and password', `http://${USER}:${SECRET}@127.0.0.1:9001/`, /= "http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:9001\/" \(must not carry credentials/],
  ['a password alone', `http://:${SECRET}@127.0.0.1:9001`, /= "http:\/\/:\*\*\*@127\.0\.0\.1:9001\/"/],
  ['a user alone', `http://${SECRET}@127.0.0.1:9001/api`, /= "http:\/\/\*\*\*@127\.0\.0\.1:9001\/api"/],
  ['a password with an @', `https://${USER}:${SECRET}@x@10.0.1.11:8443/`, /= "https:\/\/\*\*\*:\*\*\*@10\.0\.1\.11:8443\/"/],
  ['an invalid port', `http://${USER}:${SECRET}@127.0.0.1:99999/`, /= "http:\/\/\*\*\*@127\.0\.0\.1:99999\/" \(must be an absolute http\(s\) URL\)/],
  ['a password with a slash', `http://${USER}:${SECRET}/x@127.0.0.1:9001/`, /= "http:\/\/\*\*\*@127\.0\.0\.1:9001\/" \(must be an absolute/],
  ['another scheme', `ftp://${USER}:${SECRET}@127.0.0.1/`, /= "ftp:\/\/\*\*\*:\*\*\*@127\.0\.0\.1\/" \(must use http or https\)/],
  ['no scheme', `${USER}:${SECRET}@127.0.0.1:9001`, /= "\*\*\*@127\.0\.0\.1:9001" \(must use http or https\)/],
  ['no slashes', `http:${USER}:${SECRET}@127.0.0.1:9001`, /= "http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:9001\/"/],
  // Cut to 80 characters in the message: the credentials are masked first, so no part of them is left.
  ['a long password', `http://${USER}:${SECRET}${'x'.repeat(120)}@127.0.0.1:9001/`, /= "http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:9001\/"/],
  ['a long URL', `http://${USER}:${SECRET}@127.0.0.1:9001/${'a'.repeat(3000)}`, /= "http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:9001\/a+\.\.\." \(must be at most 2048 characters long \(it has 3\d{3}\)\)/]
]

test('a target URL with credentials is refused without showing them, at startup and by the runtime API', async (t) => {
  const app = Fastify()
  await app.register(lb, { pools: { users: { targets: ['http://127.0.0.1:9001'] } } })
  await app.ready()
  t.teardown(async () => { await app.close() })
  const pool = app.lb.pool('users')
  for (const [what, url, shown] of withCredentials) {
    for (const [how, options, field] of [
      ['a string', { pools: { users: { targets: [url] } } }, 'targets\\[0\\]\\.url'],
      ['an object', { pools: { users: { targets: [{ url, weight: 2 }] } } }, 'targets\\[0\\]\\.url'],
      ['targets that are no array', { pools: { users: { targets: url } } }, 'targets'],
      ['after a good target', { pools: { users: { targets: ['http://127.0.0.1:9001', { url }] } } }, 'targets\\[1\\]\\.url']
    ] as const) {
      const err = await startupError(options)
      t.equal(err.code, 'FST_LB_INVALID_OPTION', `${what}, ${how}: the code`)
      t.match(err.message, new RegExp(`^Invalid option for pool "users": ${field} = `), `${what}, ${how}: pool and field`)
      if (how !== 'targets that are no array') t.match(err.message, shown, `${what}, ${how}: the value, masked`)
      t.notMatch(everything(err), SECRET, `${what}, ${how}: no password`)
      t.notMatch(everything(err), USER, `${what}, ${how}: no user`)
    }
    for (const [call, field] of [
      [() => pool.add(url), 'add\\(target\\)\\.url'],
      [() => pool.add({ url, id: 'new' }), 'add\\(target\\)\\.url'],
      [() => { pool.reconcile(['http://127.0.0.1:9001', url]) }, 'targets\\[1\\]\\.url']
    ] as const) {
      const err = (() => { try { call() } catch (e) { return e as Error & { code?: string } } throw new Error('not refused') })()
      t.equal(err.code, 'FST_LB_INVALID_OPTION')
      t.match(err.message, new RegExp(`^Invalid option for pool "users": ${field} = `), `${what}, runtime: pool and field`)
      t.match(err.message, shown, `${what}, runtime: the value, masked`)
      t.notMatch(everything(err), SECRET, `${what}, runtime: no password`)
    }
  }
  t.same(pool.targets.map((x) => x.url), ['http://127.0.0.1:9001'], 'nothing changed')
})

test('port 0 and URLs longer than 2048 characters are refused', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['http://127.0.0.1:0', /targets\[0\]\.url = "http:\/\/127\.0\.0\.1:0" \(must not use port 0/],
    ['https://users.internal:0/api', /targets\[0\]\.url = "https:\/\/users\.internal:0\/api" \(must not use port 0/],
    ['http://[::1]:00', /targets\[0\]\.url = "http:\/\/\[::1\]:00" \(must not use port 0/],
    ['http://127.0.0.1:1/' + 'a'.repeat(2030), /targets\[0\]\.url = "http:\/\/127\.0\.0\.1:1\/a{58}\.\.\." \(must be at most 2048 characters long \(it has 2049\)\)/],
    // Short as written, too long once percent-encoded (each é becomes %C3%A9).
    ['http://127.0.0.1:1/' + 'é'.repeat(400), /targets\[0\]\.url = .* \(must be at most 2048 characters long, also once percent-encoded\)/]
  ]
  for (const [url, message] of cases) {
    const err = await startupError({ pools: { users: { targets: [url] } } })
    t.equal(err.code, 'FST_LB_INVALID_OPTION')
    t.match(err.message, message)
    t.ok(err.message.length < 250, 'the message stays one short line')
  }
  const longest = 'http://127.0.0.1:1/' + 'a'.repeat(2048 - 19)
  const app = Fastify()
  await app.register(lb, { pools: { users: { targets: [longest, 'http://127.0.0.1:65535'] } } })
  await app.ready()
  t.teardown(async () => { await app.close() })
  t.same(app.lb.pool('users').targets.map((x) => x.url.length), [2048, 22], '2048 characters and port 65535 are fine')
  t.throws(() => app.lb.pool('users').add('http://127.0.0.1:0'), { code: 'FST_LB_INVALID_OPTION', message: /add\(target\)\.url = "http:\/\/127\.0\.0\.1:0" \(must not use port 0/ })
})

test('registry URLs with credentials are masked in messages too', async (t) => {
  const err = await startupError({ pools: { users: { discovery: { type: 'etcd', prefix: '/x', url: `ftp://${USER}:${SECRET}@127.0.0.1:2379` } } } })
  t.equal(err.code, 'FST_LB_INVALID_OPTION')
  t.match(err.message, /pool "users": discovery\.url = "ftp:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:2379\/"/)
  t.notMatch(everything(err), SECRET)
})

/** A gateway logger writing each line into `lines`. */
function capture (lines: string[]): { logger: { level: string, stream: { write: (line: string) => void } } } {
  return { logger: { level: 'trace', stream: { write: (line: string) => { lines.push(line) } } } }
}

test('file discovery: a target URL with credentials is refused, and no log line holds them', async (t) => {
  const [up] = await startUpstreams(['a'])
  t.teardown(async () => { await up.stop() })
  const path = join(await tempDir(t, 'file'), 'targets.json')
  await writeFile(path, JSON.stringify([up.url]))
  const lines: string[] = []
  const gw = await startGateway({ pools: { main: { discovery: { type: 'file', path, debounce: 20, interval: 0 } } } }, undefined, capture(lines))
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  if (pool.targets.length === 0) await nextDiscovery(pool, (e) => e.ok && e.targets === 1)

  const failed = nextDiscovery(pool, (e) => !e.ok)
  const port = new URL(up.url).port
  await writeFile(path, JSON.stringify([up.url, `http://${USER}:${SECRET}@127.0.0.1:${port}/api`]))
  const event = await failed
  t.match(event.error, /targets\[1\]\.url = "http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+\/api" \(must not carry credentials/)
  t.same(memberUrls(pool), [up.url], 'the last good list stays')
  const logged = lines.join('')
  t.match(logged, /discovery failed/, 'the refusal was logged')
  t.match(logged, /\*\*\*:\*\*\*@127\.0\.0\.1/, 'with the URL masked')
  t.notMatch(logged, SECRET, 'no log line holds the password')
  t.notMatch(logged, USER, 'nor the user')
})

test('consul discovery: an instance address with credentials is left out, and no log line holds them', async (t) => {
  const [up] = await startUpstreams(['a'])
  t.teardown(async () => { await up.stop() })
  const consul = await new ConsulServer().start()
  t.teardown(async () => { await consul.close() })
  consul.setService('users', [
    { address: '127.0.0.1', port: up.port },
    { address: `${USER}:${SECRET}@127.0.0.1`, port: up.port + 1 }
  ])
  const lines: string[] = []
  const gw = await startGateway({
    pools: { main: { discovery: { type: 'consul', url: consul.url, service: 'users', retryInterval: 20, maxRetryInterval: 200 } } }
  }, undefined, capture(lines))
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  if (pool.targets.length === 0) await nextDiscovery(pool, (e) => e.ok)
  t.same(memberUrls(pool), [up.url], 'the instance with credentials is left out')
  const logged = lines.join('')
  t.match(logged, /left out a users instance: .*\*\*\*:\*\*\*@127\.0\.0\.1/, 'the refusal was logged, the URL masked')
  t.notMatch(logged, SECRET, 'no log line holds the password')
  t.notMatch(logged, USER, 'nor the user')
})

test('redactUrl and describeValue mask credentials wherever a parser could find them', async (t) => {
  t.equal(redactUrl('http://127.0.0.1:9001/a@b'), 'http://127.0.0.1:9001/a@b', 'an @ in a path is no credential')
  t.equal(redactUrl('http://127.0.0.1:9001/?u=a:b@c'), 'http://127.0.0.1:9001/?u=a:b@c', 'nor in a query')
  t.equal(redactUrl('GE@T'), 'GE@T', 'a string without a colon before its @ is left alone')
  t.equal(redactUrl('user@host'), 'user@host')
  t.equal(redactUrl('no at sign: here'), 'no at sign: here')
  t.equal(redactUrl('etcd://u:p@h/x'), 'etcd://***:***@h/x', 'other schemes')
  t.equal(describeValue({ url: `http://${USER}:${SECRET}@h:1`, weight: 0 }), '{"url":"http://***:***@h:1/","weight":0}', 'inside objects')
  t.equal(describeValue([`http://${USER}:${SECRET}@h:99999`]), '["http://***@h:99999"]', 'inside arrays')
})
