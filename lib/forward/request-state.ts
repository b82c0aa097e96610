import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import type { Pool } from '../pool/pool'
import type { Exchange, ExchangeSource } from './exchange'

/** The one request decoration of the plugin: its per-request state, null until a hook of the plugin's needs it. */
export const kState = Symbol('fastify-lb.request')

interface StatefulRequest extends FastifyRequest {
  [kState]: RequestState | null
}

/**
 * Everything the plugin keeps about one request, behind one symbol: one
 * decoration, one object, made by the first of the plugin's hooks that runs
 * (the body reader of a POST, otherwise the pick hook). It is also what the
 * core reads of the request (the hash key and client address of a pick, the
 * cookie and connection affinity reads), so pool and affinity never see a
 * Fastify request.
 */
export class RequestState implements ExchangeSource {
  /** The route's pool, from the pick hook on. */
  pool: Pool | null = null
  /** reply-from options of the pool's tries. */
  fromOptions: FastifyReplyFromHooks = {}
  key: string | undefined = undefined
  ip = ''
  /** The request on its way through the pool, from the `forward` handler on. */
  exchange: Exchange | null = null
  issuedCookie: string | null = null
  /** The body as it came, which every try sends; undefined without one (or when the gateway's own parsers read it). */
  rawBody: Buffer | undefined = undefined
  /** The request's own additionalHeaders while Fastify's parsers are shown none: restored before validation. */
  parsingHeaders: object | null = null

  constructor (readonly request: FastifyRequest, readonly answer: FastifyReply) {}

  get cookieHeader (): string | undefined {
    return this.request.headers.cookie
  }

  get connection (): object | null {
    return this.request.raw.socket ?? null
  }

  get secure (): boolean {
    return this.request.protocol === 'https'
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
