import { test } from 'tap'
import { rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import type { FileDiscoveryOptions } from '../../lib/discovery/options'
import { membershipUnderLoad, memberUrls, nextDiscovery, urlsOf, type Member } from '../helpers/discovery-scenario'
import { Client, sequence, startGateway, until } from '../helpers/gateway'
import { tempDir } from '../helpers/servers'

const entry = (u: DemoUpstream, weight = 1): { id: string, url: string, weight: number } => ({ id: u.id, url: u.url, weight })

/** Writes the file the way careful tools do: a temporary file renamed into place. */
async function writeAtomically (path: string, value: unknown): Promise<void> {
  await writeFile(path + '.tmp', JSON.stringify(value, null, 2))
  await rename(path + '.tmp', path)
}

function fileDiscovery (path: string): FileDiscoveryOptions {
  return { type: 'file', path, debounce: 20, interval: 0 }
}

test('file: targets added, re-weighted and removed under load, without a failed request', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const path = join(await tempDir(t, 'file'), 'targets.json')
  const publish = async (members: Member[]): Promise<void> => writeAtomically(path, members.map((m) => entry(m.upstream, m.weight)))
  await publish([{ upstream: ups[0], weight: 1 }, { upstream: ups[1], weight: 1 }])
  const gw = await startGateway({ pools: { main: { algorithm: 'weighted-round-robin', retry: false, discovery: fileDiscovery(path) } } })
  t.teardown(gw.close)
  await membershipUnderLoad(t, gw, 'main', [ups[0], ups[1], ups[2]], publish, { weights: true })
})

test('file: a half-written or invalid file is reported and the last good list stays', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const path = join(await tempDir(t, 'file'), 'targets.json')
  await writeFile(path, JSON.stringify([entry(ups[0])]))
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', discovery: fileDiscovery(path) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  const client = new Client()
  t.teardown(async () => { await client.close() })

  // A writer caught half-way: the JSON ends in the middle of the second entry.
  const whole = JSON.stringify([entry(ups[0]), entry(ups[1])])
  let failed = nextDiscovery(pool, (e) => !e.ok)
  await writeFile(path, whole.slice(0, whole.length - 20))
  let event = await failed
  t.match(event, { provider: 'file', ok: false, targets: 1, error: /not valid JSON/ })
  // JSON.parse quotes the bytes around its error: a password just before it must not reach the log.
  failed = nextDiscovery(pool, (e) => !e.ok)
  await writeFile(path, '["http://u:s3cret@h:1",]')
  event = await failed
  t.match(event, { ok: false, error: /not valid JSON/ })
  t.notMatch(event.error, /s3cret|cret@/, 'no part of the password in the error')
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'the last good list stays')
  t.same(await sequence(client, gw.url + '/x', 3), ['a', 'a', 'a'], 'and keeps serving')

  let updated = nextDiscovery(pool, (e) => e.ok)
  await writeFile(path, whole)
  t.match(await updated, { provider: 'file', ok: true, targets: 2 })
  t.same(memberUrls(pool), urlsOf(ups), 'the completed file is picked up')

  // Valid JSON with an invalid target: the whole file is refused, naming the field.
  failed = nextDiscovery(pool, (e) => !e.ok)
  await writeFile(path, JSON.stringify([entry(ups[0]), { ...entry(ups[1]), weight: 0 }]))
  event = await failed
  t.match(event.error, /targets\[1\]\.weight = 0/)
  t.same(memberUrls(pool), urlsOf(ups), 'an invalid file changes nothing')

  // A deleted file keeps the last list too; the file coming back (renamed into place) is read.
  failed = nextDiscovery(pool, (e) => !e.ok)
  await rm(path)
  t.match((await failed).error, /cannot read/)
  t.same(memberUrls(pool), urlsOf(ups))
  updated = nextDiscovery(pool, (e) => e.ok)
  await writeAtomically(path, [entry(ups[1])])
  await updated
  await until(() => pool.targets.length === 1, 5000, 'a to leave')
  t.same(memberUrls(pool), urlsOf([ups[1]]), 'a file renamed into place is picked up')
  t.same(await sequence(client, gw.url + '/x', 2), ['b', 'b'])
})

test('file: a missing file at start leaves the static targets; the file joins them when it appears', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const path = join(await tempDir(t, 'file'), 'later.json')
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: [entry(ups[0])], discovery: fileDiscovery(path) } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'the static target serves while the file is missing')

  const updated = nextDiscovery(pool, (e) => e.ok)
  // The static target listed again by the file counts once.
  await writeAtomically(path, [entry(ups[0]), entry(ups[1], 2)])
  await updated
  t.same(memberUrls(pool), urlsOf(ups))
  t.equal(pool.get('b')?.weight, 2)

  // Emptying the file leaves the static target, which no provider can remove.
  await writeAtomically(path, [])
  await until(() => pool.targets.length === 1, 5000, 'b to leave')
  t.same(memberUrls(pool), urlsOf([ups[0]]))
})

test('file: polling catches a change that no watch event reported', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  t.teardown(async () => { for (const u of ups) await u.stop() })
  const dir = await tempDir(t, 'file')
  const path = join(dir, 'targets.json')
  await writeFile(path, JSON.stringify([entry(ups[0])]))
  // A debounce longer than the test keeps watch events from reading the file: only the poll can.
  const gw = await startGateway({ pools: { main: { discovery: { type: 'file', path, debounce: 60_000, interval: 30 } } } })
  t.teardown(gw.close)
  const pool = gw.app.lb.pool('main')
  t.same(memberUrls(pool), urlsOf([ups[0]]), 'read at start')
  await writeFile(path, JSON.stringify([entry(ups[0]), entry(ups[1])]))
  await until(() => pool.targets.length === 2, 5000, 'the poll to see the change')
  t.same(memberUrls(pool), urlsOf(ups))
})
