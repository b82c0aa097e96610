type Headers = Record<string, string | string[] | number | undefined>

/** What the forwarding headers are made of: Fastify's request, whose ips, protocol and host follow trustProxy. */
export interface ForwardedSource {
  readonly raw: { readonly socket?: { readonly remoteAddress?: string } | null }
  readonly ips?: string[]
  readonly protocol: string
  readonly host: string
}

/**
 * Request headers that concern the client's connection to the gateway, not the
 * request (RFC 9110 section 7.6.1), beside `connection` and the headers it
 * lists, which reply-from drops. undici refuses several of them outright; the
 * others would make the upstream act on what only the gateway agreed to.
 * `expect` is answered by the gateway itself (Node's server sends the
 * 100 Continue), so the upstream gets the whole body without waiting.
 */
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'expect', 'http2-settings'] as const

/** Drops the hop-by-hop headers of a request going upstream, in place (a lookup each; a delete only for those present). */
export function dropRequestHopByHop (headers: Headers): void {
  for (let i = 0; i < HOP_BY_HOP.length; i++) {
    const name = HOP_BY_HOP[i]
    if (headers[name] !== undefined) delete headers[name]
  }
  // TE: only "trailers" says something the upstream may use (it is how gRPC asks for trailers).
  const te = headers.te
  if (te !== undefined && te !== 'trailers') delete headers.te
}

/**
 * Sets X-Forwarded-For, -Proto and -Host as Envoy and Traefik do. The client's
 * own values are kept only when Fastify's trustProxy trusts the peer that sent
 * them: the peer's address is then appended to the chain; otherwise the chain
 * restarts at the peer, and proto and host are the gateway's own view, so a
 * client cannot pose as another address to the upstream.
 */
function setForwardedHeaders (request: ForwardedSource, headers: Headers): void {
  const peer = request.raw.socket?.remoteAddress ?? ''
  const prior = headers['x-forwarded-for']
  // request.ips exists with trustProxy only; it lists the peer and then every address trust lets through.
  // Each read runs proxy-addr over the request: read only when the client sent a chain that could be kept.
  if (prior !== undefined && (request.ips?.length ?? 0) > 1) {
    headers['x-forwarded-for'] = `${Array.isArray(prior) ? prior.join(', ') : String(prior)}, ${peer}`
  } else {
    headers['x-forwarded-for'] = peer
  }
  headers['x-forwarded-proto'] = request.protocol
  headers['x-forwarded-host'] = request.host
}

/**
 * setForwardedHeaders on a copy of a try's headers, for rewriteRequestHeaders to
 * return in their place. reply-from's headers are an object spread of the
 * client's (`{ ...req.headers }`), and V8 (Node 20) gives such a clone a map
 * outside any transition tree: every header added to it builds new maps, 1 to
 * 1.5 µs each plus the garbage (the three headers cost 13% of the requests/s in
 * bench:pair). A copy made by Object.assign shares its maps with every other
 * request's, and adding to it costs a few ns; the copy keeps the headers' order.
 */
export function withForwardedHeaders<T extends Headers> (request: ForwardedSource, headers: T): T {
  const copy = Object.assign({}, headers)
  setForwardedHeaders(request, copy)
  return copy
}

/**
 * A copy of a client's headers for a request the gateway makes itself (a
 * tunnel's handshake, a mirrored copy): without Connection and the headers it
 * lists, without the other hop-by-hop ones, with the target's Host and, unless
 * turned off, the forwarding headers.
 */
export function copiedRequestHeaders<T extends Headers> (source: ForwardedSource, client: T, host: string, forwarded: boolean): Headers {
  let headers: Headers = { ...client }
  const listed = headers.connection
  delete headers.connection
  if (typeof listed === 'string') {
    for (const token of listed.split(',')) {
      const name = token.trim().toLowerCase()
      if (name !== '' && Object.hasOwn(headers, name)) delete headers[name]
    }
  }
  dropRequestHopByHop(headers)
  headers.host = host
  if (forwarded) headers = withForwardedHeaders(source, headers)
  return headers
}
