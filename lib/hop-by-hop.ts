import type { IncomingHttpHeaders } from 'node:http'
import { util } from 'undici'

/**
 * Hop-by-hop headers describe the upstream connection, not the answer (RFC 9110
 * section 7.6.1): passing `connection: keep-alive` on would override what the
 * client asked of its own connection.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te'])

type Headers = Record<string, string | string[] | undefined>

/** Drops the headers a Connection header lists. */
function dropListed (h: Headers, listed: string): void {
  for (const token of listed.split(',')) {
    const key = token.trim().toLowerCase()
    if (key !== '' && key in h) delete h[key]
  }
}

/**
 * The headers of an upstream answer as undici hands them over (name, value,
 * name, value, ...), without the hop-by-hop ones: skipped while parsing rather
 * than deleted afterwards, which would leave the object slow to read.
 */
export function answerHeaders (raw: Buffer[]): IncomingHttpHeaders {
  const headers: Headers = {}
  let listed: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = util.headerNameToString(raw[i])
    const value = raw[i + 1].toString('latin1')
    if (HOP_BY_HOP.has(name)) {
      if (name === 'connection') listed = listed === undefined ? value : `${listed},${value}`
      continue
    }
    // No upstream gets to set an object's prototype through a header name.
    if (name === '__proto__') continue
    const seen = headers[name]
    if (seen === undefined) headers[name] = value
    else if (typeof seen === 'string') headers[name] = [seen, value]
    else seen.push(value)
  }
  if (listed !== undefined && listed !== 'keep-alive' && listed !== 'close') dropListed(headers, listed)
  return headers as IncomingHttpHeaders
}

/** Drops the hop-by-hop headers of an answer parsed by someone else (the gateway's own reply-from client), in place. */
export function dropHopByHop<T extends object> (headers: T): T {
  const h = headers as Headers
  const listed = h.connection
  if (typeof listed === 'string') dropListed(h, listed)
  // A delete of an absent header still costs a runtime call; a lookup does not.
  for (const name of HOP_BY_HOP) if (name in h) delete h[name]
  return headers
}
