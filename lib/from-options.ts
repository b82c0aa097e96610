import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import { exchangeOf, type UpstreamResponse } from './forward'

function noRetry (): null {
  return null
}

/**
 * reply-from options for one pool, built once: every callback finds its request's
 * exchange, so no closure is created per request. reply-from's own retries are
 * off (it would retry a 503 up to ten times on the same upstream); the exchange
 * decides instead.
 */
export function buildFromOptions (timeout: number): FastifyReplyFromHooks {
  return {
    timeout,
    retryDelay: noRetry,
    getUpstream (request) {
      // Only the exchange's current try decides the origin; nothing in the request can.
      return exchangeOf(request)?.current?.target.origin ?? 'http://invalid.invalid'
    },
    onError (reply) {
      exchangeOf(reply.request)?.onError()
    },
    onResponse (request, _reply, res) {
      // reply-from types `res` as a server response; at run time it is { statusCode, headers, stream }.
      exchangeOf(request)?.onResponse(res as unknown as UpstreamResponse)
    }
  }
}
