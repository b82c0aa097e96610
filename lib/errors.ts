import createError from '@fastify/error'
import type { FastifyReply } from 'fastify'
import { redactUrl } from './options/redact'

/** A pool option (or a runtime change to a pool) is invalid: names the pool, the field and the value. */
export const InvalidOptionError = createError<'FST_LB_INVALID_OPTION', 500, [string, string, string, string]>(
  'FST_LB_INVALID_OPTION',
  'Invalid option for pool "%s": %s = %s (%s)',
  500
)

/** A route names a pool that was never registered. */
export const UnknownPoolError = createError<'FST_LB_UNKNOWN_POOL', 500, [string, string]>(
  'FST_LB_UNKNOWN_POOL',
  'Route "%s" names the unknown pool "%s"',
  500
)

function redactStrings (_key: string, value: unknown): unknown {
  return typeof value === 'string' ? redactUrl(value) : value
}

/**
 * Renders a value for an error message. Functions, long strings and deep objects
 * are shortened so a message stays one readable line. Credentials in URLs, in the
 * value or anywhere inside it, are masked before anything is cut: messages end up
 * in logs.
 */
export function describeValue (value: unknown): string {
  if (typeof value === 'function') return '[function]'
  if (typeof value === 'string') {
    const text = redactUrl(value)
    return JSON.stringify(text.length > 80 ? text.slice(0, 77) + '...' : text)
  }
  if (value === undefined) return 'undefined'
  if (typeof value === 'bigint' || typeof value === 'symbol') return String(value)
  if (value instanceof RegExp) return String(value)
  try {
    const text = JSON.stringify(value, redactStrings)
    return text.length > 80 ? text.slice(0, 77) + '...' : text
  } catch {
    return Object.prototype.toString.call(value)
  }
}

export function invalidOption (pool: string, field: string, value: unknown, why: string): Error {
  return new InvalidOptionError(pool, field, describeValue(value), why)
}

/** Codes of the answers the gateway itself gives to clients. */
export type ClientErrorCode = 'FST_LB_NO_TARGET' | 'FST_LB_BAD_GATEWAY' | 'FST_LB_GATEWAY_TIMEOUT' | 'FST_LB_BAD_PATH' |
  'FST_LB_UPGRADE_UNSUPPORTED' | 'FST_LB_OVERLOADED' | 'FST_LB_CIRCUIT_OPEN'

/** Seconds a client is asked to wait after a 503 for lack of targets: about one health-check interval. */
export const RETRY_AFTER_SECONDS = 5

/**
 * An answer of the gateway's own (no target, overloaded, an upstream that
 * failed), sent as an error so that the gateway's error handler shapes it like
 * any other. Fastify's default handler writes the usual JSON body
 * `{ statusCode, code, error, message }` and the headers below (Retry-After on
 * a 503). The message names the pool, never an upstream address.
 */
export class GatewayError extends Error {
  declare statusCode: number
  declare code: ClientErrorCode
  declare headers: Record<string, string> | undefined
}
Object.defineProperty(GatewayError.prototype, 'name', { value: 'GatewayError' })

/**
 * A GatewayError made without its constructor: an overloaded gateway refuses
 * requests by the thousand, and the stack trace Error would capture says
 * nothing about where the trouble is (the upstreams).
 */
function gatewayError (statusCode: number, code: ClientErrorCode, message: string, retryAfter: number): GatewayError {
  const err = Object.create(GatewayError.prototype) as GatewayError
  err.message = message
  err.statusCode = statusCode
  err.code = code
  err.headers = statusCode === 503 ? { 'retry-after': String(retryAfter) } : undefined
  return err
}

/** Answers a client on the gateway's own behalf, through the route's error handler. */
export function sendError (reply: FastifyReply, statusCode: 400 | 501 | 502 | 503 | 504, code: ClientErrorCode, message: string, retryAfter = RETRY_AFTER_SECONDS): void {
  reply.send(gatewayError(statusCode, code, message, retryAfter))
}

/** The gateway's answers for a pool, by what went wrong; each names the pool and nothing behind it. */
export const answers = {
  noTarget (reply: FastifyReply, pool: string): void {
    sendError(reply, 503, 'FST_LB_NO_TARGET', `No target of pool "${pool}" is available`)
  },
  /** Every target is full, and the queue (if any) was full or the request waited its whole timeout. */
  overloaded (reply: FastifyReply, pool: string): void {
    sendError(reply, 503, 'FST_LB_OVERLOADED', `Pool "${pool}" is overloaded`)
  },
  /** The pool's circuit breaker is open (or half-open with every trial taken): no upstream was contacted. */
  circuitOpen (reply: FastifyReply, pool: string, retryAfterSeconds: number): void {
    sendError(reply, 503, 'FST_LB_CIRCUIT_OPEN', `The circuit breaker of pool "${pool}" is open`, retryAfterSeconds)
  },
  noRoutePool (reply: FastifyReply): void {
    // Used on a route without an upstream: answered like an empty pool rather than guess a destination.
    sendError(reply, 503, 'FST_LB_NO_TARGET', 'This route has no upstream pool')
  },
  /** A '..' segment, in any spelling, would climb out of the target's base path once resolved. */
  badPath (reply: FastifyReply, pool: string): void {
    sendError(reply, 400, 'FST_LB_BAD_PATH', `The path has a '..' segment, which pool "${pool}" does not forward`)
  },
  asteriskNotOptions (reply: FastifyReply, pool: string): void {
    sendError(reply, 400, 'FST_LB_BAD_PATH', `Only OPTIONS may name "*", which pool "${pool}" does not forward`)
  },
  upgradeUnsupported (reply: FastifyReply, pool: string): void {
    sendError(reply, 501, 'FST_LB_UPGRADE_UNSUPPORTED', `Pool "${pool}" does not forward WebSocket upgrades`)
  },
  /** The gateway's own HTTP client would not send the request. */
  notSent (reply: FastifyReply, pool: string): void {
    sendError(reply, 502, 'FST_LB_BAD_GATEWAY', `The gateway could not send the request to pool "${pool}"`)
  },
  /** The client left; the answer only lets Fastify finish the request. */
  abandoned (reply: FastifyReply, pool: string): void {
    sendError(reply, 502, 'FST_LB_BAD_GATEWAY', `Request to pool "${pool}" was abandoned by the client`)
  },
  timedOut (reply: FastifyReply, pool: string): void {
    sendError(reply, 504, 'FST_LB_GATEWAY_TIMEOUT', timedOutMessage(pool))
  },
  noAnswer (reply: FastifyReply, pool: string): void {
    sendError(reply, 502, 'FST_LB_BAD_GATEWAY', noAnswerMessage(pool))
  }
}

export function timedOutMessage (pool: string): string {
  return `Upstream of pool "${pool}" timed out`
}

export function noAnswerMessage (pool: string): string {
  return `No upstream of pool "${pool}" could answer`
}
