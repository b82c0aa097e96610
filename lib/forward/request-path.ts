/** How a client's request target becomes the path and query sent upstream, and which ones are refused. */

/**
 * The request path as it goes upstream. An absolute-form request target
 * (`GET http://other/x`) keeps only its path, so a client can never choose the
 * origin; everything else is passed on unchanged.
 */
export function upstreamPath (url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) return url
  try {
    const parsed = new URL(url)
    return parsed.pathname + parsed.search
  } catch {
    return '/' + url
  }
}

/** What `OPTIONS *` is told the gateway allows. */
export const ASTERISK_ALLOW = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS'

export function isWebSocketUpgrade (value: string): boolean {
  return value.toLowerCase().includes('websocket')
}

/**
 * Whether a path has a '..' segment once decoded, a backslash (raw or %5C)
 * counting as '/', as many upstream servers read it. reply-from checks only
 * for '/..' and '../', so '/%5c..%5c' would pass it and climb out of the
 * target's base path at such an upstream.
 */
export function climbs (path: string): boolean {
  // Most paths have neither '..' nor an escape: one scan each.
  if (!path.includes('..') && !path.includes('%')) return false
  let decoded: string
  try {
    decoded = decodeURIComponent(path)
  } catch {
    // Not decodable, so no '..' either (Fastify refuses such paths before routing; an absolute-form target may bring one).
    return false
  }
  const segments = decoded.replaceAll('\\', '/').split('/')
  for (let i = 0; i < segments.length; i++) if (segments[i] === '..') return true
  return false
}
