import { createHash } from 'node:crypto'
import { chmodSync, statSync } from 'node:fs'
import { stat, unlink } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from '../types'
import { readFrames, writeFrame } from './frames'
import { createHub, type HubPeer, type HubSeed } from './hub'
import type { Link, LinkEvents } from './link'
import { isOurs, type PrimaryMessage, type WorkerMessage } from './messages'
import type { ResolvedCluster } from './options'

/** How often the worker that holds the socket checks that the path is still its own. */
const OWNERSHIP_CHECK_MS = 1000

export interface SocketLinkOptions {
  path: string
  /** This worker, as the hub lists it. */
  self: { id: number, pid: number }
  /** ms a gathering waits for the workers' answers, when this worker holds the hub. */
  gatherTimeout: number
  /** What this worker knows, for the hub it may come to hold. */
  seed: () => HubSeed
  log: Logger
}

/**
 * The socket the workers of one app elect their hub on: `cluster.socket`, or a
 * path under os.tmpdir() named after the node:cluster primary (PM2's daemon),
 * the app (PM2's app name, else the script) and the cluster options, so that
 * two apps, or two PM2 daemons, never share one.
 */
export function socketPath (options: ResolvedCluster, env: NodeJS.ProcessEnv = process.env, primaryPid = process.ppid): string {
  if (options.socket !== null) return options.socket
  const app = env.name ?? process.argv[1] ?? ''
  const hash = createHash('sha256').update(JSON.stringify([primaryPid, app, env.PM2_HOME ?? '', options.metrics, options.timeout])).digest('hex')
  return join(tmpdir(), `fastify-lb-${hash.slice(0, 16)}.sock`)
}

async function listen (path: string): Promise<Server | NodeJS.ErrnoException> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.once('error', resolve)
    // Exclusive: in a node:cluster worker a listen() is otherwise the primary's, shared by every worker that asks.
    server.listen({ path, exclusive: true }, () => {
      server.off('error', resolve)
      resolve(server)
    })
  })
}

async function connect (path: string): Promise<Socket | NodeJS.ErrnoException> {
  return await new Promise((resolve) => {
    const socket = createConnection(path)
    socket.once('error', resolve)
    socket.once('connect', () => {
      socket.off('error', resolve)
      resolve(socket)
    })
  })
}

function isError (value: object): value is NodeJS.ErrnoException {
  return value instanceof Error
}

/** Messages between a worker and the hub in its own process go as they would over the wire: copied, and later. */
function copy<T> (message: T): T {
  return JSON.parse(JSON.stringify(message)) as T
}

/**
 * Joins the machine's hub over its Unix socket, or becomes it: the first
 * worker to listen on the path holds the hub; the others connect. A file left
 * by a hub that died (the connection is refused) is removed and the path
 * claimed again. Rejects when it can neither listen nor connect.
 */
export async function socketLink (options: SocketLinkOptions, events: LinkEvents): Promise<Link> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = await listen(options.path)
    if (!isError(server)) return holdHub(server, options, events)
    if (server.code !== 'EADDRINUSE') throw server
    // A file another user made at the path is no hub of ours: it would steer this gateway's health state.
    const owner = await stat(options.path).then((s) => s.uid, () => null)
    if (owner !== null && process.getuid !== undefined && owner !== process.getuid()) throw new Error(`${options.path} belongs to another user`)
    let socket = await connect(options.path)
    if (isError(socket) && socket.code === 'ECONNREFUSED') {
      // A worker may have bound the path an instant before it listens on it (the same synchronous call in Node,
      // so microseconds): ask once more, a few ms later, before calling the file stale.
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 10))
      socket = await connect(options.path)
    }
    if (!isError(socket)) return clientLink(socket, events)
    if (socket.code === 'ECONNREFUSED') await unlink(options.path).catch(() => {})
    else if (socket.code !== 'ENOENT') throw socket
  }
  throw new Error(`could neither listen on nor connect to ${options.path}`)
}

function clientLink (socket: Socket, events: LinkEvents): Link {
  let open = true
  readFrames(socket, (message) => {
    if (open && isOurs(message)) events.message(message as PrimaryMessage)
  })
  socket.on('error', () => {})
  socket.on('close', () => {
    if (!open) return
    open = false
    events.lost()
  })
  return {
    via: 'socket',
    get open () { return open },
    send (message) { writeFrame(socket, message) },
    close () {
      open = false
      socket.destroy()
    }
  }
}

/**
 * This worker holds the hub: the other workers' connections are its peers,
 * and this worker is one too, through calls. It checks every second that the
 * path is still its own: two workers that found the same stale file at once
 * may both have claimed it, and the one whose file was replaced gives way.
 */
function holdHub (server: Server, options: SocketLinkOptions, events: LinkEvents): Link {
  // Only this user's processes may connect (the state they send steers the gateway).
  chmodSync(options.path, 0o600)
  const inode = statSync(options.path).ino
  const hub = createHub(options.gatherTimeout, options.seed())
  const sockets = new Set<Socket>()
  let open = true
  const local: HubPeer = {
    id: options.self.id,
    pid: options.self.pid,
    send (message) {
      const delivered = copy(message)
      setImmediate(() => { if (open) events.message(delivered) })
    }
  }
  server.on('connection', (socket) => {
    sockets.add(socket)
    const peer = { id: 0, pid: 0, send (message: PrimaryMessage) { writeFrame(socket, message) } }
    readFrames(socket, (message) => {
      if (!open || !isOurs(message)) return
      const m = message as WorkerMessage
      if (m.kind === 'hello') {
        peer.id = m.worker ?? 0
        peer.pid = m.pid ?? 0
      }
      hub.receive(peer, m)
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      sockets.delete(socket)
      hub.leave(peer)
    })
  })
  const ours = (): boolean => {
    try {
      return statSync(options.path).ino === inode
    } catch {
      return false
    }
  }
  const end = (): void => {
    open = false
    clearInterval(watch)
    hub.close()
    for (const socket of sockets) socket.destroy()
    // Closing a listening Unix socket removes its path, whoever's file is there now: one that is no
    // longer ours is left open (unreferenced, refusing connections) rather than taking another hub's file.
    if (ours()) {
      server.close()
    } else {
      server.removeAllListeners('connection')
      server.on('connection', (socket) => socket.destroy())
      server.unref()
    }
  }
  const lose = (): void => {
    if (!open) return
    options.log.warn({ socket: options.path }, 'fastify-lb: another worker holds the cluster socket now: this one joins it')
    end()
    events.lost()
  }
  const watch = setInterval(() => {
    stat(options.path).then((s) => { if (s.ino !== inode) lose() }, lose)
  }, OWNERSHIP_CHECK_MS)
  watch.unref()
  return {
    via: 'socket (hub)',
    get open () { return open },
    send (message) { if (open) hub.receive(local, copy(message)) },
    close () {
      if (open) end()
    }
  }
}
