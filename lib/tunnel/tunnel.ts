import { request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import { answers } from '../errors'
import { classifyFailure } from '../forward/failure'
import { answerHeaders } from '../forward/hop-by-hop'
import type { RequestState } from '../forward/request-state'
import type { Upstream } from '../forward/upstream'
import type { UpstreamClient } from '../forward/upstream-client'
import type { FailureKind } from '../pool/pool'
import type { Target } from '../pool/target'
import type { OpenTunnel } from '../pool/tunnels'
import { switchingHead, upgradeRequestHeaders } from './handshake'
import type { ClientSocket } from './upgrades'

/** ms a side of a tunnel may take to pass on what it holds once the other side closed. */
const LINGER_MS = 5000

/**
 * One WebSocket upgrade on its way through a pool: the handshake sent to a
 * target (another one if the connection is refused, as for a request: nothing
 * was sent), and once the target switches protocols, a tunnel that passes
 * bytes both ways as they come, with back-pressure, until either side closes.
 * The target's in-flight slot is held from the handshake until the tunnel
 * closes, so least-connections, bounded loads and limits see open sockets.
 *
 * A target that answers the upgrade with another status has its answer
 * passed on; a handshake that no target answers gets the gateway's 502 or
 * 504, as a request would, without an address.
 */
export class Tunnel implements OpenTunnel {
  target!: Target
  private readonly tried: Target[] = []
  private handshake: ClientRequest | null = null
  private upstreamSocket: Socket | null = null
  private timer: NodeJS.Timeout | null = null
  private connected = false
  private started = 0
  /** Whether this holds target's in-flight slot. */
  private holding = false
  /** The client's socket closed, or the tunnel was ended: nothing more is sent. */
  private ended = false
  private sockets = 0

  constructor (
    private readonly upstream: Upstream,
    private readonly state: RequestState,
    private readonly client: ClientSocket,
    /** Path and query as they go to the target, after its base path. */
    private readonly path: string,
    private readonly settings: UpstreamClient
  ) {
    client.socket.once('close', this.clientClosed)
  }

  private get pool (): Upstream['pool'] {
    return this.upstream.pool
  }

  /** Sends the handshake to target, whose slot the pick may have taken for this request already. */
  send (target: Target): void {
    if (this.ended) return
    const pool = this.pool
    this.target = target
    this.tried.push(target)
    if (!this.state.takeReservation(target)) pool.acquire(target)
    this.holding = true
    this.connected = false
    this.started = performance.now()
    const origin = new URL(target.origin)
    const request = this.state.request
    const headers = upgradeRequestHeaders(request, request.raw.headers, origin.host, pool.options.forwardedHeaders)
    const tls = this.settings.tls
    const secure = origin.protocol === 'https:'
    const handshake = (secure ? httpsRequest : httpRequest)({
      // URL keeps an IPv6 literal in brackets, which a connect refuses.
      hostname: origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname,
      port: origin.port,
      method: 'GET',
      path: target.basePath + this.path,
      headers,
      agent: false,
      setHost: false,
      ...(secure ? { rejectUnauthorized: tls.rejectUnauthorized, ca: tls.ca, servername: tls.servername } : {})
    })
    this.handshake = handshake
    handshake.once('socket', (socket: Socket) => {
      if (socket.connecting) socket.once('connect', this.onConnect)
      else this.onConnect()
    })
    handshake.once('upgrade', this.upgraded)
    handshake.once('response', this.answered)
    handshake.once('error', this.failed)
    this.arm(this.settings.connectTimeout)
    handshake.end()
  }

  private arm (ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(this.timedOut, ms)
  }

  private disarm (): void {
    if (this.timer === null) return
    clearTimeout(this.timer)
    this.timer = null
  }

  private readonly onConnect = (): void => {
    this.connected = true
    // From here the target has the pool's timeout to answer, as a request's headers would.
    this.arm(this.pool.options.timeout)
  }

  private readonly timedOut = (): void => {
    this.timer = null
    const error = Object.assign(new Error('upgrade timed out'), { code: this.connected ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_CONNECT_TIMEOUT' })
    this.handshake?.destroy(error)
  }

  private latency (): number {
    return performance.now() - this.started
  }

  private release (): void {
    if (!this.holding) return
    this.holding = false
    this.pool.release(this.target)
  }

  /** The target switched protocols: the 101 goes to the client and the tunnel opens. */
  private readonly upgraded = (answer: IncomingMessage, socket: Socket, head: Buffer): void => {
    this.disarm()
    this.handshake = null
    const pool = this.pool
    const target = this.target
    if (this.ended) {
      socket.destroy()
      this.release()
      return
    }
    pool.record(target, 101, null, this.latency())
    pool.tunnels.count(target, 'upgraded')
    const reply = this.state.answer
    reply.hijack()
    const client = this.client.socket
    // From here the client's end passes to the target as a half-close, as the tunnel's bytes do.
    client.removeListener('end', this.client.left)
    // The gateway's own headers for the answer (the affinity cookie) go out with the target's.
    const cookie = reply.getHeader('set-cookie')
    const cookies = cookie === undefined ? [] : Array.isArray(cookie) ? cookie.map(String) : [String(cookie)]
    ;(reply.raw as ServerResponse).detachSocket(client as Socket)
    client.write(switchingHead(answer, cookies))
    if (head.length > 0) client.write(head)
    if (this.client.head.length > 0) socket.write(this.client.head)
    this.upstreamSocket = socket
    this.sockets = 2
    socket.on('error', this.socketError)
    socket.once('close', this.upstreamClosed)
    // Frames are small and latency-bound: as the client wrote them, not coalesced.
    const clientSocket = client as Socket
    if (typeof clientSocket.setNoDelay === 'function') clientSocket.setNoDelay(true)
    socket.setNoDelay(true)
    const idle = pool.options.tunnelIdleTimeout
    if (idle > 0) {
      socket.setTimeout(idle)
      socket.once('timeout', this.close)
    }
    client.pipe(socket)
    socket.pipe(client)
    pool.tunnels.add(this)
  }

  /** The target answered the upgrade with another status: its answer is the client's, as it came. */
  private readonly answered = (answer: IncomingMessage): void => {
    this.disarm()
    this.handshake = null
    const pool = this.pool
    const target = this.target
    pool.record(target, answer.statusCode ?? 502, null, this.latency())
    pool.tunnels.count(target, 'rejected')
    answer.once('close', () => { this.release() })
    if (this.ended) {
      answer.destroy()
      return
    }
    const reply = this.state.answer
    reply.code(answer.statusCode ?? 502)
    reply.headers(answerHeaders(answer.headers))
    reply.send(answer)
  }

  /** The handshake failed before any answer: another target if nothing was sent, else the gateway's 502 or 504. */
  private readonly failed = (err: Error): void => {
    this.disarm()
    this.handshake = null
    const pool = this.pool
    const target = this.target
    const latency = this.latency()
    this.release()
    if (this.ended) return
    const failure: FailureKind = this.connected ? classifyFailure(err) : 'connect'
    pool.record(target, 0, failure, latency)
    pool.tunnels.count(target, 'failed')
    if (failure === 'connect') {
      const next = pool.pickAnother(this.state, this.tried)
      if (next !== undefined) {
        this.send(next)
        return
      }
    }
    if (failure === 'timeout') answers.timedOut(this.state.answer, pool.name)
    else answers.noAnswer(this.state.answer, pool.name)
  }

  private readonly socketError = (): void => {
    // A reset on either side: 'close' follows, which ends the other.
  }

  private readonly clientClosed = (): void => {
    if (this.upstreamSocket === null) {
      // Gone during the handshake: nobody reads an answer; the target is not charged for it.
      this.ended = true
      if (this.handshake !== null) {
        this.disarm()
        this.handshake.destroy()
        this.handshake = null
        this.release()
      }
      return
    }
    this.sideClosed(this.upstreamSocket)
  }

  private readonly upstreamClosed = (): void => {
    this.sideClosed(this.client.socket as Socket)
  }

  /**
   * One side of an open tunnel closed: the other gets what is still on its way
   * and its end, within LINGER_MS; once both are closed the slot is free.
   */
  private sideClosed (other: Socket): void {
    this.sockets--
    if (this.sockets === 0) {
      this.finish()
      return
    }
    if (other.destroyed) return
    if (other.writableFinished) {
      other.destroy()
      return
    }
    other.end(() => other.destroy())
    setTimeout(() => other.destroy(), LINGER_MS).unref()
  }

  private finish (): void {
    this.ended = true
    this.pool.tunnels.delete(this)
    this.release()
  }

  /** Ends the tunnel at once, both sides (a drain's timeout, idle, the gateway closing). */
  readonly close = (): void => {
    this.ended = true
    this.client.socket.destroy()
    this.upstreamSocket?.destroy()
  }
}
