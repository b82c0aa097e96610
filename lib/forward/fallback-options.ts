import type { FastifyReply, FastifyRequest } from 'fastify'
import { OptionReader } from '../options/reader'
import { isRecord } from '../options/validate'

/**
 * Why a pool could not serve a request, as `fallback.on` and the `reason` of
 * `lb_fallback_total` name it: no target may take it, the circuit breaker is
 * open, every target is full (and the queue, if any, overflowed or timed out),
 * or every try failed without an answer.
 */
export type UnavailableReason = 'no_target' | 'circuit_open' | 'overloaded' | 'failed'

export const UNAVAILABLE_REASONS: readonly UnavailableReason[] = ['no_target', 'circuit_open', 'overloaded', 'failed']

/** A fixed answer: the body goes as it is (a string or Buffer) or as JSON (an object or array). */
export interface StaticAnswer {
  status: number
  headers?: Record<string, string>
  body?: string | Buffer | Record<string, unknown> | unknown[]
}

/** Answers the client itself (it must send the reply, or return what the reply should send). */
export type FallbackHandler = (request: FastifyRequest, reply: FastifyReply, reason: UnavailableReason) => unknown

/** Another pool's name, a static answer, or a handler. */
export type FallbackTo = string | StaticAnswer | FallbackHandler

/** What a pool falls back to, for every reason or only those in `on`. */
export type FallbackOptions = FallbackTo | { to: FallbackTo, on: UnavailableReason[] }

interface ResolvedAnswer {
  status: number
  headers: Readonly<Record<string, string>>
  body: string | Buffer
}

/** The `fallback` option as resolved: exactly one of pool, answer and handler is set. */
export interface ResolvedFallback {
  on: ReadonlySet<UnavailableReason>
  pool: string | null
  answer: ResolvedAnswer | null
  handler: FallbackHandler | null
}

const STATIC_KEYS = ['status', 'headers', 'body']
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const SHAPE = 'must be a pool name, { status, headers?, body? }, a function, or { to, on }'

function readAnswer (r: OptionReader): ResolvedAnswer {
  r.known(STATIC_KEYS, 'is not a field of a static answer')
  const status = r.integer('status', undefined, 200, 599)
  const headers: Record<string, string> = {}
  if (r.has('headers')) {
    const h = r.object('headers')
    for (const name of Object.keys(h.spec)) {
      if (!TOKEN.test(name)) h.fail(name, 'is not a header name', name)
      headers[name.toLowerCase()] = h.string(name)
    }
  }
  const raw = r.value('body')
  let body: string | Buffer = ''
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
    body = raw
    headers['content-type'] ??= typeof raw === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream'
  } else if (raw !== undefined) {
    if (typeof raw !== 'object' || raw === null) r.fail('body', 'must be a string, a Buffer, an object or an array')
    body = JSON.stringify(raw)
    headers['content-type'] ??= 'application/json; charset=utf-8'
  }
  return { status, headers, body }
}

function readTo (r: OptionReader, key: string, value: unknown): Omit<ResolvedFallback, 'on'> {
  if (typeof value === 'string') {
    if (value === '') r.fail(key, 'must name a pool')
    return { pool: value, answer: null, handler: null }
  }
  if (typeof value === 'function') return { pool: null, answer: null, handler: value as FallbackHandler }
  if (isRecord(value)) return { pool: null, answer: readAnswer(r.object(key)), handler: null }
  return r.fail(key, SHAPE)
}

/** Validates `fallback`; null without one. */
export function resolveFallback (pool: string, value: unknown): ResolvedFallback | null {
  if (value === undefined || value === null || value === false) return null
  const top = new OptionReader(pool, '', { fallback: value })
  if (isRecord(value) && 'to' in value) {
    const r = top.object('fallback').known(['to', 'on'], 'is not a fallback option')
    const list = r.items('on', `must be an array of ${UNAVAILABLE_REASONS.join(', ')}`, UNAVAILABLE_REASONS)
    const on = new Set(list.map((i) => list.oneOf(i, undefined, UNAVAILABLE_REASONS, `must be one of ${UNAVAILABLE_REASONS.join(', ')}`)))
    if (on.size === 0) r.fail('on', 'must name at least one reason')
    return { on, ...readTo(r, 'to', r.value('to')) }
  }
  return { on: new Set(UNAVAILABLE_REASONS), ...readTo(top, 'fallback', value) }
}
