import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, RouteOptions } from 'fastify'
import FindMyWay from 'find-my-way'
import { isWebSocketUpgrade } from '../forward/request-path'

/** The client's side of an upgrade: its socket, taken from the HTTP server, and what it sent after the head. */
export interface ClientSocket {
  readonly socket: Duplex
  readonly head: Buffer
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

/** WebSocket upgrades routed by the plugin, until the route's handler takes the socket. */
const upgrades = new WeakMap<IncomingMessage, ClientSocket>()

/** The socket of a WebSocket upgrade the plugin routed; undefined for every other request. */
export function upgradeOf (raw: IncomingMessage): ClientSocket | undefined {
  return upgrades.get(raw)
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
 * every upgrade is routed, the others as plain requests, and their connection
 * closes after the answer (the server no longer reads it as HTTP).
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
        const webSocket = upgrade !== undefined && isWebSocketUpgrade(upgrade)
        if (others.length > 0 && !(webSocket && this.owns(req))) {
          for (const listener of others) listener.call(server, req, socket, head)
          return
        }
        socket.on('error', ignoreSocketError)
        if (webSocket) upgrades.set(req, { socket, head })
        const res = new ServerResponse(req)
        // Whatever answers here (a guard's 401, a 502, a target's own refusal) is the connection's last.
        res.shouldKeepAlive = false
        res.assignSocket(socket as never)
        res.once('finish', () => { socket.end(() => socket.destroy()) })
        fastify.routing(req, res)
      })
    })
  }

  private owns (req: IncomingMessage): boolean {
    return this.inexact || this.mirror.lookup(req, null as never) === true
  }
}
