import { test } from 'tap'
import { spawn } from 'node:child_process'
import { chownSync, existsSync, statSync, unlinkSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { socketLink } from '../../lib/cluster/socket-link'
import { readFrames, writeFrame } from '../../lib/cluster/frames'
import type { Link } from '../../lib/cluster/link'
import { CHANNEL, type PrimaryMessage } from '../../lib/cluster/messages'

const silent = { warn () {}, info () {}, error () {}, debug () {}, trace () {}, fatal () {}, child () { return silent } }

interface Joined {
  link: Link
  /** Resolves with the next message the hub sends this worker. */
  next: () => Promise<PrimaryMessage>
  lost: Promise<void>
}

async function dir (t: Test): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'lb-link-'))
  t.teardown(async () => { await rm(path, { recursive: true, force: true }) })
  return path
}

/** One worker's link to the hub on `path`, as worker `id`, having said hello. */
async function connectWorker (t: Test, path: string, id: number): Promise<Joined> {
  const queue: PrimaryMessage[] = []
  const waiting: Array<(m: PrimaryMessage) => void> = []
  let onLost = (): void => {}
  const lost = new Promise<void>((resolve) => { onLost = resolve })
  const link = await socketLink({ path, self: { id, pid: process.pid }, gatherTimeout: 500, seed: () => ({ health: [], ejections: [] }), log: silent }, {
    message (m) {
      const w = waiting.shift()
      if (w === undefined) queue.push(m)
      else w(m)
    },
    lost: () => { onLost() }
  })
  t.teardown(() => { link.close() })
  link.send({ channel: CHANNEL, kind: 'hello', worker: id, pid: process.pid })
  return {
    link,
    lost,
    next: async () => await new Promise((resolve) => {
      const m = queue.shift()
      if (m === undefined) waiting.push(resolve)
      else resolve(m)
    })
  }
}

test('the first worker holds the hub and checks; the next connects and follows; an ejection goes from one to the other', async (t) => {
  const path = join(await dir(t), 'hub.sock')
  const a = await connectWorker(t, path, 1)
  t.equal(a.link.via, 'socket (hub)', 'the first worker listens on the socket')
  t.match(await a.next(), { kind: 'welcome', checking: true }, 'and is elected to check')
  t.equal(statSync(path).mode & 0o777, 0o600, "the socket is its owner's only")
  const b = await connectWorker(t, path, 2)
  t.equal(b.link.via, 'socket', 'the second connects')
  t.match(await b.next(), { kind: 'welcome', checking: false }, 'and follows')
  const ejection = { pool: 'api', target: 'b', until: Date.now() + 60_000, count: 1 }
  b.link.send({ channel: CHANNEL, kind: 'eject', ejection })
  t.same(await a.next(), { channel: CHANNEL, kind: 'eject', ejection }, 'the hub worker applies the ejection the other decided')

  // The hub's worker leaves: the other takes the socket over, elected to check, and the file it leaves is its own.
  a.link.close()
  await b.lost
  const b2 = await connectWorker(t, path, 2)
  t.equal(b2.link.via, 'socket (hub)', 'the remaining worker holds the hub now')
  t.match(await b2.next(), { kind: 'welcome', checking: true }, 'and checks')
})

test('a socket file left by a killed hub is removed and the socket taken', async (t) => {
  const path = join(await dir(t), 'hub.sock')
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  process.kill(child.pid as number, 'SIGKILL')
  await exited
  t.ok(existsSync(path), 'the killed process left its socket file')
  const a = await connectWorker(t, path, 1)
  t.equal(a.link.via, 'socket (hub)', 'the next worker holds the hub')
  t.match(await a.next(), { kind: 'welcome', checking: true })
})

test('a socket file another user owns is neither joined nor removed', async (t) => {
  if (process.getuid?.() !== 0) {
    t.pass('needs root to give the file to another user', { skip: 'not root' })
    return
  }
  const path = join(await dir(t), 'hub.sock')
  const server = createServer().listen(path)
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  t.teardown(() => { server.close() })
  chownSync(path, 65534, 65534)
  await t.rejects(connectWorker(t, path, 1), /belongs to another user/, 'the worker refuses it')
  t.ok(existsSync(path), 'and leaves it')
})

test('a hub whose file another worker replaced gives way and leaves that file in place', async (t) => {
  const path = join(await dir(t), 'hub.sock')
  const a = await connectWorker(t, path, 1)
  await a.next()
  // Another worker found the file stale at the same instant: it removed it and listens on its own.
  unlinkSync(path)
  const b = await connectWorker(t, path, 2)
  t.equal(b.link.via, 'socket (hub)', 'the other worker holds a hub on the same path')
  await b.next()
  await a.lost
  t.ok(existsSync(path), "the first hub gave way without removing the other's file")
  const a2 = await connectWorker(t, path, 1)
  t.equal(a2.link.via, 'socket', 'and joins the other hub')
  t.match(await a2.next(), { kind: 'welcome', checking: false }, 'as a follower')
})

test('frames: one JSON message per line, whatever the chunks', async (t) => {
  const dirPath = await dir(t)
  const path = join(dirPath, 'frames.sock')
  const received: unknown[] = []
  const got = new Promise<void>((resolve) => {
    const server = createServer((socket) => {
      readFrames(socket, (m) => {
        received.push(m)
        if (received.length === 2) resolve()
      })
    }).listen(path)
    t.teardown(() => { server.close() })
  })
  const socket: Socket = await new Promise((resolve) => { const s = createConnection(path, () => resolve(s)) })
  t.teardown(() => { socket.destroy() })
  const first = { text: 'two\nlines and ünïcödé €', n: 1 }
  const bytes = Buffer.from(JSON.stringify(first) + '\n', 'utf8')
  // Split inside a multibyte character.
  const cut = bytes.indexOf(Buffer.from('€', 'utf8')) + 1
  socket.write(bytes.subarray(0, cut))
  await new Promise((resolve) => setTimeout(resolve, 20))
  socket.write(bytes.subarray(cut))
  writeFrame(socket, { n: 2 })
  await got
  t.same(received, [first, { n: 2 }], 'both messages, intact')
})
