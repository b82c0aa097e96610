import { AsyncResource } from 'node:async_hooks'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Deadlines, Timed } from './deadlines'
import type { Pool } from '../pool/pool'
import type { Waiter } from '../pool/queue'
import type { Target } from '../pool/target'
import type { Exchange, ExchangeSource } from './exchange'
import type { Upstream } from './upstream'

/** The one request decoration of the plugin: its per-request state, null until a hook of the plugin's needs it. */
export const kState = Symbol('fastify-lb.request')

interface StatefulRequest extends FastifyRequest {
  [kState]: RequestState | null
}

/** How a queued request goes on: with its target chosen (the route's hooks continue), or refused after its wait. */
export type Resume = () => void

/**
 * Everything the plugin keeps about one request, behind one symbol: one
 * decoration, one object, made by the first of the plugin's hooks that runs
 * (the body reader of a POST, otherwise the pick hook). It is also what the
 * core reads of the request (the hash key and client address of a pick, the
 * cookie and connection affinity reads, a place in the pool's queue), so pool
 * and affinity never see a Fastify request.
 */
export class RequestState implements ExchangeSource, Waiter {
  /** The route's pool (or the pool its fallback names), from the pick hook on. */
  upstream: Upstream | null = null
  key: string | undefined = undefined
  ip = ''
  /** The request on its way through the pool, from the `forward` handler on. */
  exchange: Exchange | null = null
  issuedCookie: string | null = null
  /** The body as it came, which every try sends; undefined without one (or when the gateway's own parsers read it). */
  rawBody: Buffer | undefined = undefined
  /** The request's own additionalHeaders while Fastify's parsers are shown none: restored before validation. */
  parsingHeaders: object | null = null
  /** A slot taken at the pick (pools with limits), until the first try takes it over or the request ends. */
  reserved: Target | null = null
  /** The pool's fallback served (or is serving) this request: a second one would not be tried. */
  fellBack = false
  /** While queued: how the request goes on once admitted, and how it is refused if its wait runs out. */
  private resume: Resume | null = null
  private refuse: ((state: RequestState) => void) | null = null
  private listening = false
  deadline = 0
  prevTimed: Timed | null = null
  nextTimed: Timed | null = null
  timedIn: Deadlines | null = null

  constructor (readonly request: FastifyRequest, readonly answer: FastifyReply) {}

  get pool (): Pool | null {
    return this.upstream?.pool ?? null
  }

  get cookieHeader (): string | undefined {
    return this.request.headers.cookie
  }

  /** @fastify/cookie's parse of the Cookie header, when the gateway registered it and its hook ran; else null. */
  get cookies (): Readonly<Record<string, unknown>> | null {
    const cookies = (this.request as { cookies?: unknown }).cookies
    return typeof cookies === 'object' && cookies !== null ? cookies as Record<string, unknown> : null
  }

  get connection (): object | null {
    return this.request.raw.socket ?? null
  }

  get secure (): boolean {
    return this.request.protocol === 'https'
  }

  /** Whether the request holds the slot on target that it took at the pick; the first try takes it over. */
  takeReservation (target: Target): boolean {
    if (this.reserved !== target) return false
    this.reserved = null
    return true
  }

  /** Holds a slot of target from now on, released when a try takes it over or the request ends. */
  reserve (pool: Pool, target: Target): void {
    pool.acquire(target)
    this.reserved = target
    this.listenClose()
  }

  /**
   * Waits in the pool's queue (the caller has put it there): `resume` goes on
   * once a slot is taken for it, `refuse` answers if its wait runs out. Both
   * run in the request's async context, as the hooks they continue would.
   */
  wait (resume: Resume, refuse: (state: RequestState) => void): void {
    this.resume = AsyncResource.bind(resume)
    this.refuse = AsyncResource.bind(refuse)
    this.listenClose()
  }

  /** The queue admitted it: the pool took a slot of target for it. */
  admit (target: Target): void {
    const resume = this.resume as Resume
    this.resume = null
    this.refuse = null
    this.reserved = target
    this.request.target = target
    // After the pool's admitting loop, not inside it: the route's other hooks and the handler run from here.
    queueMicrotask(resume)
  }

  /** Its wait in the queue ran out (the queue took it out first). */
  expire (): void {
    const refuse = this.refuse
    this.resume = null
    this.refuse = null
    this.pool?.waiting?.expired()
    refuse?.(this)
  }

  /** Watches the client's connection once: one listener per request, whatever holds what. */
  listenClose (): void {
    if (this.listening) return
    this.listening = true
    this.answer.raw.once('close', this.closed)
  }

  /**
   * The client's response closed (finished, or the client left): a queued
   * request leaves the queue at once, a slot no try took over is freed, and an
   * exchange under way hears of it.
   */
  private readonly closed = (): void => {
    if (this.resume !== null) {
      this.resume = null
      this.refuse = null
      this.pool?.waiting?.remove(this)
      return
    }
    const reserved = this.reserved
    if (reserved !== null) {
      this.reserved = null
      this.pool?.release(reserved)
    }
    this.exchange?.clientClosed()
  }
}

/** The request's state, made on first use. */
export function stateOf (request: FastifyRequest, reply: FastifyReply): RequestState {
  const r = request as StatefulRequest
  let state = r[kState]
  if (state === null || state === undefined) {
    state = new RequestState(request, reply)
    r[kState] = state
  }
  return state
}

/** The request's state if a hook of the plugin's made one; reply-from's callbacks see requests of other routes too. */
export function knownStateOf (request: object): RequestState | null {
  return (request as Partial<StatefulRequest>)[kState] ?? null
}

/** The exchange of a request the `forward` handler is serving, if any. */
export function exchangeOf (request: object): Exchange | null {
  return knownStateOf(request)?.exchange ?? null
}
