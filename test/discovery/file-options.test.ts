import { test } from 'tap'
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import { memberUrls, nextDiscovery, urlsOf } from '../helpers/discovery-scenario'
import { Client, count, sequence, startGateway } from '../helpers/gateway'
import { LogLines } from '../helpers/health'
import { tempDir } from '../helpers/servers'
import type { PolicyChange } from '../../lib/pool/policy'

const entry = (u: DemoUpstream): { id: string, url: string } => ({ id: u.id, url: u.url })

/** Writes the file the way careful tools do: a temporary file renamed into place. */
async function writeAtomically (path: string, value: unknown): Promise<void> {
  await writeFile(path + '.tmp', JSON.stringify(value, null, 2))
  await rename(path + '.tmp', path)
}

/** Who serves each of `keys`, asked `times` times each: one entry per key when every key sticks. */
async function servedPerKey (client: Client, url: string, keys: string[], times = 3): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const key of keys) out[key] = [...new Set(await sequence(client, url, times, { 'x-key': key }))]
  return out
}

const KEYS = Array.from({ length: 12 }, (_v, i) => `user-${i}`)

test('file discovery carries pool options: editing the file changes the algorithm; an invalid file changes nothing', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const [a, b, c] = ups
  const path = join(await tempDir(t, 'file-options'), 'users.json')
  await writeAtomically(path, { targets: [entry(a), entry(b)], options: { algorithm: 'round-robin' } })
  const lines = new LogLines()
  const gw = await startGateway({
    pools: { main: { algorithm: 'random', discovery: { type: 'file', path, debounce: 20, interval: 0 } } }
  }, undefined, { logger: { level: 'info', stream: lines } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  const client = new Client()
  t.teardown(async () => { await client.close() })
  const url = gw.url + '/x'
  const changes: PolicyChange[] = []
  pool.on('configure', (change) => changes.push(change))

  t.equal(pool.options.algorithm, 'round-robin', 'the options of the file apply at startup')
  const rotation = await sequence(client, url, 4)
  t.same(count(rotation), { a: 2, b: 2 })
  t.not(rotation[0], rotation[1], 'round robin alternates')

  // One edit: the algorithm and its hash key change.
  let read = nextDiscovery(pool, (e) => e.ok)
  await writeAtomically(path, { targets: [entry(a), entry(b)], options: { algorithm: 'consistent-hash', hashKey: { header: 'x-key' } } })
  await read
  t.same(changes.map((ch) => ch.changed), [['algorithm', 'hashKey']], 'one configure with both options')
  t.match(lines.matching("discovery changed the pool's options"), [
    { level: 30, pool: 'main', provider: 'file', changed: ['algorithm'] },
    { level: 30, pool: 'main', provider: 'file', changed: ['algorithm', 'hashKey'] }
  ], 'each change logged once, with what changed: the first read at startup, then the edit')
  const byKey = await servedPerKey(client, url, KEYS)
  t.ok(Object.values(byKey).every((served) => served.length === 1), 'each key always reaches one target')
  t.same(new Set(Object.values(byKey).flat()), new Set(['a', 'b']), 'the keys spread over both targets')

  // Options the pool refuses: neither they nor the new target apply; one warning.
  let failed = nextDiscovery(pool, (e) => !e.ok)
  await writeAtomically(path, { targets: [entry(a), entry(b), entry(c)], options: { algorithm: 'fastest' } })
  const event = await failed
  t.match(event, { provider: 'file', ok: false, targets: 2, error: /options refused: Invalid option for pool "main": algorithm = "fastest"/ })
  failed = nextDiscovery(pool, (e) => !e.ok)
  await writeAtomically(path, { targets: [entry(c), entry(a), entry(b)], options: { algorithm: 'fastest' } })
  await failed
  t.same(memberUrls(pool), urlsOf([a, b]), 'the target listed beside refused options did not join')
  t.equal(pool.options.algorithm, 'consistent-hash')
  t.same(await servedPerKey(client, url, KEYS), byKey, 'requests follow the last good configuration')
  t.match(lines.matching('discovery failed'), [{ level: 40, pool: 'main', provider: 'file', error: /algorithm = "fastest"/ }], 'two refusals, one warning')

  // Options a key of which configure() does not change at runtime, an invalid target beside good options, a bad shape.
  for (const [what, document, error] of [
    ['a startup-only option', { targets: [entry(a), entry(b)], options: { algorithm: 'round-robin', mirror: { pool: 'x' } } }, /mirror = .*is set at startup/],
    ['an invalid target', { targets: [entry(a), { url: 'ftp://x' }], options: { algorithm: 'round-robin' } }, /targets\[1\]\.url/],
    ['options that are no object', { targets: [entry(a), entry(b)], options: ['round-robin'] }, /options must be an object/],
    ['an unknown key', { targets: [entry(a), entry(b)], algorithm: 'round-robin' }, /"algorithm" is not a key of a targets file/],
    ['no targets', { options: { algorithm: 'round-robin' } }, /targets must be an array/]
  ] as const) {
    failed = nextDiscovery(pool, (e) => !e.ok)
    await writeAtomically(path, document)
    t.match((await failed).error, error, `${what}: refused`)
    t.equal(pool.options.algorithm, 'consistent-hash', `${what}: the algorithm stays`)
    t.same(memberUrls(pool), urlsOf([a, b]), `${what}: the targets stay`)
  }
  t.equal(changes.length, 1, 'no configure from a refused file')

  // A good file again: targets and options apply.
  read = nextDiscovery(pool, (e) => e.ok)
  await writeAtomically(path, { targets: [entry(a), entry(b), entry(c)], options: { algorithm: 'round-robin' } })
  t.match(await read, { ok: true, targets: 3 })
  t.same(changes.at(-1)?.changed, ['algorithm'])
  const three = await sequence(client, url, 6)
  t.same(count(three), { a: 2, b: 2, c: 2 }, 'round robin over the three targets')
  t.equal(new Set(three.slice(0, 3)).size, 3)
  t.equal(lines.matching('discovery recovered').length, 1)
})

test('file options: applied only when they change in the file; removing them keeps their values', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const [a, b, c] = ups
  const path = join(await tempDir(t, 'file-options'), 'users.json')
  const options = { algorithm: 'round-robin', retry: { attempts: 1 } }
  await writeAtomically(path, { targets: [entry(a), entry(b), entry(c)], options })
  const gw = await startGateway({ pools: { main: { discovery: { type: 'file', path, debounce: 20, interval: 0 } } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  const changes: PolicyChange[] = []
  pool.on('configure', (change) => changes.push(change))
  t.equal(pool.options.algorithm, 'round-robin')
  t.equal(pool.options.retry.attempts, 1)

  // A change made in code is not undone by an edit of the targets alone.
  pool.configure({ algorithm: 'least-connections' })
  let read = nextDiscovery(pool, (e) => e.ok)
  await writeAtomically(path, { targets: [entry(a), entry(b)], options })
  await read
  t.same(memberUrls(pool).length, 2, 'the targets changed')
  t.equal(pool.options.algorithm, 'least-connections', 'the same options in the file are not applied again')
  t.equal(changes.length, 1, 'only the configure made in code')

  // The options leave the file: they keep their values (no return to the startup values).
  read = nextDiscovery(pool, (e) => e.ok)
  await writeAtomically(path, [entry(a), entry(b)])
  await read
  t.equal(pool.options.algorithm, 'least-connections')
  t.equal(pool.options.retry.attempts, 1, 'retry keeps the value the file gave it')
  t.equal(changes.length, 1)

  // Back in the file: applied again.
  read = nextDiscovery(pool, (e) => e.ok)
  await writeAtomically(path, { targets: [entry(a), entry(b)], options })
  await read
  t.equal(pool.options.algorithm, 'round-robin')
  t.same(changes.at(-1)?.changed, ['algorithm'], 'only what differs from the pool counts as changed')
})
