import type { IncomingHttpHeaders } from 'node:http'

/**
 * Hop-by-hop headers describe the upstream connection, not the answer (RFC 9110
 * section 7.6.1): passing `connection: keep-alive` on would override what the
 * client asked of its own connection.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te'])

type Headers = Record<string, string | string[] | undefined>

const PROTO = '__proto__'

/**
 * Header names are data: an upstream may send `constructor` or `toString`, which
 * a plain object would find on Object.prototype. Object.create(null) has nothing
 * to inherit either, but V8 keeps it in dictionary mode, about a third slower to
 * fill and read on the path of every answer; an instance of a function whose
 * prototype has no prototype is a fast object that inherits nothing.
 */
const HeaderBag = function HeaderBag () {} as unknown as new () => Headers
HeaderBag.prototype = Object.create(null)

/** Drops the headers a Connection header lists. */
function dropListed (h: Headers, listed: string): void {
  for (const token of listed.split(',')) {
    const key = token.trim().toLowerCase()
    // Own names only: a Connection header listing `constructor` names no member of a plain object's prototype.
    if (key !== '' && Object.hasOwn(h, key)) delete h[key]
  }
}

/**
 * The headers of an upstream answer as undici hands them over (parsed: lower-case
 * names, repeated ones as arrays), copied without the hop-by-hop ones into an
 * object that inherits nothing: skipped while copying rather than deleted
 * afterwards, which would leave the object slow to read.
 */
export function answerHeaders (parsed: IncomingHttpHeaders): IncomingHttpHeaders {
  const headers = new HeaderBag()
  const names = Object.keys(parsed)
  for (let i = 0; i < names.length; i++) {
    const name = names[i]
    // Not passed on, though it could be stored here: reply-from copies each header with Fastify's reply.header(),
    // which keeps them in a plain object, where assigning `__proto__` drops a string value and makes an array
    // (the header sent twice) the prototype of the reply's headers, whose items then go out as headers `0`, `1`.
    if (HOP_BY_HOP.has(name) || name === PROTO) continue
    headers[name] = parsed[name]
  }
  const listed = parsed.connection
  if (listed !== undefined) {
    const value = typeof listed === 'string' ? listed : (listed as string[]).join(',')
    if (value !== 'keep-alive' && value !== 'close') dropListed(headers, value)
  }
  return headers as IncomingHttpHeaders
}

/** Drops the hop-by-hop headers of an answer parsed by someone else (the gateway's own reply-from client), in place. */
export function dropHopByHop<T extends object> (headers: T): T {
  const h = headers as Headers
  const listed = h.connection
  if (typeof listed === 'string') dropListed(h, listed)
  // A delete of an absent header still costs a runtime call; a lookup does not.
  for (const name of HOP_BY_HOP) if (name in h) delete h[name]
  // undici keeps an upstream's `__proto__` header as an own property: dropped for the reason answerHeaders() skips it.
  if (Object.hasOwn(h, PROTO)) delete h[PROTO]
  return headers
}
