import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import { exchangeOf, type UpstreamResponse } from './forward'

function noRetry (): null {
  return null
}

type ResponseHeaders = Record<string, string | string[] | undefined>

/**
 * Hop-by-hop headers describe the upstream connection, not the answer (RFC 9110
 * section 7.6.1): passing `connection: keep-alive` on would override what the
 * client asked of its own connection. The headers object is the response's own,
 * so it is edited in place.
 */
export function dropHopByHop<T extends object> (headers: T): T {
  const h = headers as ResponseHeaders
  const listed = h.connection
  if (typeof listed === 'string') {
    // Nearly every answer lists one token (keep-alive or close): no split for those.
    if (!listed.includes(',')) dropListed(h, listed)
    else for (const name of listed.split(',')) dropListed(h, name)
  }
  // Runs on every answer: a delete of an absent header still costs a runtime call, a lookup does not.
  if ('connection' in h) delete h.connection
  if ('keep-alive' in h) delete h['keep-alive']
  if ('proxy-connection' in h) delete h['proxy-connection']
  if ('transfer-encoding' in h) delete h['transfer-encoding']
  if ('upgrade' in h) delete h.upgrade
  if ('trailer' in h) delete h.trailer
  if ('te' in h) delete h.te
  return headers
}

function dropListed (h: ResponseHeaders, name: string): void {
  const key = name.trim().toLowerCase()
  if (key !== '' && key in h) delete h[key]
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
    rewriteHeaders: dropHopByHop,
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
