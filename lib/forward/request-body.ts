import { errorCodes, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction } from 'fastify'
import type { Readable } from 'node:stream'
import { knownStateOf, stateOf } from './request-state'

/**
 * What Fastify's body parsing sees of a request whose body the plugin read:
 * no body at all, so no parser runs, whatever the content type.
 */
const NO_BODY = Object.freeze({ 'content-type': undefined, 'content-length': undefined, 'transfer-encoding': undefined })
/** Stands for "no additionalHeaders of the request's own" in the request state's parsingHeaders. */
const NONE = Object.freeze({})

type PreParsing = (request: FastifyRequest, reply: FastifyReply, payload: Readable, done: (err: Error | null, payload?: Readable) => void) => void

/** Methods Fastify reads no body of: it never looks at their content type, so nothing needs hiding from it. */
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE'])

/**
 * A preParsing hook of the routes that `forward` serves: reads the body as it
 * came into a Buffer (request.body, and what every try sends), within the
 * route's bodyLimit, and keeps Fastify's parsers away from it. A proxy that
 * parsed and serialised bodies again would change them: big numbers, duplicate
 * keys, whitespace a signature covers, bytes that are not UTF-8, JSON scalars.
 * It runs last among the preParsing hooks, so a hook of the gateway's that
 * transforms the payload (decompression) still applies.
 */
export const readRawBody: PreParsing = function readRawBody (request, reply, payload, done) {
  const headers = request.raw.headers
  const length = headers['content-length']
  if (headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) {
    done(null, payload)
    return
  }
  const limit = request.routeOptions.bodyLimit
  if (length !== undefined && Number(length) > limit) {
    reply.header('connection', 'close')
    done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE())
    return
  }
  let first: Buffer | undefined
  let rest: Buffer[] | null = null
  let received = 0
  const finish = (err: Error | null): void => {
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onEnd)
    if (err !== null) {
      // The rest of the body may still come on this connection: it cannot carry another request.
      reply.header('connection', 'close')
      done(err)
      return
    }
    const body = rest === null ? (first ?? Buffer.alloc(0)) : Buffer.concat(rest, received)
    const state = stateOf(request, reply)
    state.rawBody = body
    request.body = body
    if (!BODYLESS.has(request.method)) {
      const own = (request as unknown as { additionalHeaders?: object }).additionalHeaders
      state.parsingHeaders = own ?? NONE
      request.headers = NO_BODY as unknown as FastifyRequest['headers']
    }
    done(null, payload)
  }
  const onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    received += bytes.length
    if (received > limit) {
      finish(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE())
      return
    }
    if (first === undefined) first = bytes
    else if (rest === null) rest = [first, bytes]
    else rest.push(bytes)
  }
  const onEnd = (err?: Error & { statusCode?: number }): void => {
    if (err !== undefined && err !== null) {
      // The client broke off its body: its fault, as Fastify's own parsers report it.
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400
      finish(err)
      return
    }
    finish(null)
  }
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onEnd)
  payload.resume()
}

/** A preValidation hook, first of the route's: hooks and schemas from here on see the request's headers as they came. */
export function restoreHeaders (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void {
  const state = knownStateOf(request)
  const own = state === null ? null : state.parsingHeaders
  if (state !== null && own !== null) {
    state.parsingHeaders = null
    request.headers = (own === NONE ? undefined : own) as FastifyRequest['headers']
  }
  done()
}
