import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FallbackHandler, ResolvedFallback, UnavailableReason } from './fallback-options'
import { readPickInput } from './pick-input'
import type { Upstream } from './upstream'

/**
 * Answers with a static answer or a handler of the fallback. A handler that
 * throws or rejects leaves the answer to Fastify's error handler, as a route
 * handler's error would.
 */
export function answerWith (fallback: ResolvedFallback, request: FastifyRequest, reply: FastifyReply, reason: UnavailableReason): void {
  const answer = fallback.answer
  if (answer !== null) {
    reply.code(answer.status).headers(answer.headers).send(answer.body)
    return
  }
  const handler = fallback.handler as FallbackHandler
  let result: unknown
  try {
    result = handler(request, reply, reason)
  } catch (err) {
    reply.send(err)
    return
  }
  if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
    (result as Promise<unknown>).then((value) => {
      if (!reply.sent && value !== undefined) reply.send(value)
    }, (err: unknown) => {
      if (!reply.sent) reply.send(err)
    })
  } else if (result !== undefined && !reply.sent) {
    reply.send(result)
  }
}

/** What falling back reads and changes of a request (its RequestState). */
export interface FallbackSubject {
  upstream: Upstream | null
  fellBack: boolean
  key: string | undefined
  ip: string
  readonly request: FastifyRequest
  readonly answer: FastifyReply
}

/** What a request's fallback did: answered it, or moved it to the pool it names (the caller picks there). */
export type FallbackOutcome = 'answered' | 'moved' | null

/**
 * Serves a request its pool could not with the pool's fallback, when it has one
 * for `reason` and the request has not fallen back already (a fallback pool's
 * own fallback is not followed: no chain, no loop). Counted per reason.
 */
export function fallBack (state: FallbackSubject, reason: UnavailableReason): FallbackOutcome {
  const upstream = state.upstream as Upstream
  const pool = upstream.pool
  const fallback = pool.options.fallback
  if (fallback === null || state.fellBack || !fallback.on.has(reason)) return null
  state.fellBack = true
  pool.fallbacks[reason]++
  const to = upstream.fallbackTo
  if (to === null) {
    answerWith(fallback, state.request, state.answer, reason)
    return 'answered'
  }
  state.upstream = to
  readPickInput(to.pool, state.request, state)
  return 'moved'
}
