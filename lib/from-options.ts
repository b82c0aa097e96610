import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import { exchangeOf, type UpstreamResponse } from './forward'
import { dropHopByHop } from './hop-by-hop'

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
    rewriteHeaders (headers, request) {
      // A try of the plugin's own parsed its answer's headers without the hop-by-hop ones already.
      return request !== undefined && exchangeOf(request)?.current?.headers === headers ? headers : dropHopByHop(headers)
    },
    getUpstream (request) {
      // Only the exchange's current try decides the origin; nothing in the request can.
      return exchangeOf(request)?.current?.target.origin ?? 'http://invalid.invalid'
    },
    onError (reply, { error }) {
      // reply-from reports an answer with an invalid status here and then hands it to onResponse anyway: handled there, once.
      if ((error as { code?: unknown }).code === 'FST_REPLY_FROM_BAD_GATEWAY') return
      exchangeOf(reply.request)?.onError(error)
    },
    queryString (_search, _url, request) {
      return exchangeOf(request)?.query ?? ''
    },
    onResponse (request, _reply, res) {
      // reply-from types `res` as a server response; at run time it is { statusCode, headers, stream }.
      exchangeOf(request)?.onResponse(res as unknown as UpstreamResponse)
    }
  }
}
