import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import type { UpstreamResponse } from './exchange'
import { exchangeOf } from './request-state'
import { dropHopByHop } from './hop-by-hop'
import { rewriteOwnUrls } from './location-rewrite'
import { dropRequestHopByHop, withForwardedHeaders } from './request-headers'

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
      const attempt = request === undefined ? null : exchangeOf(request)?.current
      // A try of the plugin's own parsed its answer's headers without the hop-by-hop ones already.
      const answer = attempt?.headers === headers ? headers : dropHopByHop(headers)
      // Every answer pays these three lookups; only one that carries such a header reads the option and is rewritten.
      if ((answer.location !== undefined || answer['content-location'] !== undefined || answer.refresh !== undefined) &&
        request !== undefined && attempt != null && attempt.owner.pool.options.rewriteLocation) {
        rewriteOwnUrls(answer, attempt.target, request)
      }
      return answer
    },
    rewriteRequestHeaders (request, headers) {
      // reply-from hands over a copy of the client's headers for this try: hop-by-hop ones go in place, the forwarding ones on a copy of its own.
      dropRequestHopByHop(headers)
      return exchangeOf(request)?.pool.options.forwardedHeaders === false ? headers : withForwardedHeaders(request, headers)
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
