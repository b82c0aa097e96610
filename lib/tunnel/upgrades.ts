import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, RouteOptions } from 'fastify'
import FindMyWay from 'find-my-way'
import { isWebSocketUpgrade } from '../forward/request-path'

/** The client's side of an upgrade: its socket, taken from the HTTP server, and what it sent after the head. */
export interface ClientSocket {
  readonly socket: Duplex
  readonly head: Buffer
  /** Until the tunnel opens, the client's end of its sending is its leaving (the server sees it half-open otherwise). */
  readonly left: () => void
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

/** WebSocket upgrades routed by the plugin, until the route's handler takes the socket. */
const upgrades = new WeakMap<IncomingMessage, ClientSocket>()

/** The socket of a WebSocket upgrade the plugin routed; undefined for every other request. */
export function upgradeOf (raw: IncomingMessage): ClientSocket | undefined {
  return upgrades.get(raw)
}

/**
 * Gives the server back an upgrade it would have served as a plain request
 * had no one listened for upgrades (`Upgrade: h2c`, a WebSocket upgrade on a
 * route that is not the plugin's): its head again, without `upgrade` in its
 * Connection header, then what followed it (a body, a next request). The
 * server parses the connection anew, so the body is read and keep-alive goes
 * on, as without the plugin. Node has parsed and checked these bytes once
 * already; its strings are latin1, so they go back byte for byte.
 */
function asPlainRequest (server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    let value = raw[i + 1]
    if (raw[i].toLowerCase() === 'connection') {
      value = value.split(',').map((token) => token.trim()).filter((token) => token.toLowerCase() !== 'upgrade').join(', ')
      if (value === '') continue
    }
    text += `${raw[i]}: ${value}\r\n`
  }
  socket.unshift(Buffer.concat([Buffer.from(text + '\r\n', 'latin1'), head]))
  server.emit('connection', socket)
}

function answered (): boolean {
  return true
}

function ignoreSocketError (): void {
  // A client that resets its connection mid-answer: the socket closes, and whoever holds it hears of that.
}

/**
 * Takes WebSocket upgrades through the gateway's own routes. Node's HTTP
 * server hands a request with an `Upgrade` header to 'upgrade' listeners,
 * with the socket out of its hands, once any listener exists; otherwise to
 * the routes as a plain request. The plugin listens, and routes the upgrade
 * through Fastify as @fastify/websocket does, so the route's hooks (a guard
 * that rejects it, the pick) run as for any request and `forward` tunnels it.
 *
 * Other 'upgrade' listeners (@fastify/websocket, a ws server of the
 * gateway's) keep every upgrade that is not a WebSocket upgrade for a
 * `forward` route with an upstream: the plugin takes theirs over once the
 * gateway is ready and passes those on. Which upgrades are the plugin's is
 * decided by a router of its own holding the GET paths of those routes, with
 * find-my-way's default matching (Fastify's too). Without other listeners,
 * every other upgrade goes back to the server as the plain request it would
 * have been without any listener (asPlainRequest).
 */
export class UpgradeRoutes {
  private readonly mirror = FindMyWay({ defaultRoute: () => false })
  /** A route this router could not hold (an unknown constraint): every WebSocket upgrade is then taken as the plugin's. */
  private inexact = false

  /** onRoute: a route whose GET the plugin forwards. */
  add (route: RouteOptions): void {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    if (!methods.includes('GET')) return
    try {
      if (route.constraints === undefined) this.mirror.on('GET', route.url, answered)
      else this.mirror.on('GET', route.url, { constraints: route.constraints }, answered)
    } catch {
      this.inexact = true
    }
  }

  /** Listens for upgrades on the gateway's server from when it is ready, before it listens. */
  install (fastify: FastifyInstance): void {
    fastify.addHook('onReady', async () => {
      const server = fastify.server
      const others = server.listeners('upgrade') as UpgradeListener[]
      server.removeAllListeners('upgrade')
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        const upgrade = req.headers.upgrade
        if (req.method === 'GET' && upgrade !== undefined && isWebSocketUpgrade(upgrade) && this.owns(req)) {
          this.route(fastify, req, socket, head)
        } else if (others.length > 0) {
          for (const listener of others) listener.call(server, req, socket, head)
        } else {
          asPlainRequest(server, req, socket, head)
        }
      })
    })
  }

  /** Routes a WebSocket upgrade through Fastify with its socket, for `forward` to tunnel. */
  private route (fastify: FastifyInstance, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreSocketError)
    // Node's server sockets allow half-open connections: a client that ends its side would stay open, queued or waiting.
    const left = (): void => { socket.destroy() }
    socket.once('end', left)
    upgrades.set(req, { socket, head, left })
    const res = new ServerResponse(req)
    // Whatever answers here (a guard's 401, a 502, a target's own refusal) is the connection's last.
    res.shouldKeepAlive = false
    res.assignSocket(socket as never)
    res.once('finish', () => { socket.end(() => socket.destroy()) })
    fastify.routing(req, res)
  }

  private owns (req: IncomingMessage): boolean {
    return this.inexact || this.mirror.lookup(req, null as never) === true
  }
}
