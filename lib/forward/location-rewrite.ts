import type { FastifyRequest } from 'fastify'
import { invalidOption } from '../errors'

/** The part of a target a rewrite needs: its configured URL, split. */
export interface TargetUrl {
  readonly origin: string
  readonly basePath: string
}

type Headers = Record<string, string | string[] | undefined>

/** What the gateway's origin is read from: the request as Fastify sees it. */
type GatewayRequest = Pick<FastifyRequest, 'protocol' | 'host'>

/** The answer headers that may name a URL the client is sent to, or told the answer came from. */
const URL_HEADERS = ['location', 'content-location'] as const

/** A host fit to be put into a URL: a name or an IP literal, with an optional port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$/

/**
 * `Refresh: 5; url=...` as browsers read it (the HTML standard's "shared declarative refresh steps"): a delay,
 * a separator, an optional `url=`, and the URL, maybe quoted.
 */
const REFRESH = /^(\s*[\d.]*(?:\s*[;,]\s*|\s+)(?:url\s*=\s*)?)(["']?)(.*?)\2(\s*)$/is

/**
 * The gateway's origin as the client addressed it (Fastify's `protocol` and `host`, which follow
 * X-Forwarded-Proto and X-Forwarded-Host only from a proxy `trustProxy` trusts). '' when the request does not
 * give it in a form fit for a URL (no Host, or a forwarded value that is no host): the rewritten URL is then
 * path-absolute, which every client resolves against the URL it asked for.
 */
function gatewayOrigin (request: GatewayRequest): string {
  const protocol = (request.protocol as string | undefined)?.toLowerCase()
  const host = request.host
  if ((protocol !== 'http' && protocol !== 'https') || !HOST.test(host)) return ''
  return `${protocol}://${host}`
}

/** Where the authority of a URL ends: WHATWG parsers end it at '/', '\', '?' or '#'. */
function authorityEnd (url: string, from: number): number {
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c === 47 || c === 92 || c === 63 || c === 35) return i
  }
  return url.length
}

/** The origin an authority gives with this scheme, as the target's was derived (lower case, no default port). */
function originOf (scheme: string, authority: string): string | undefined {
  // Credentials in the URL make it something else than the target's own address.
  if (authority === '' || authority.includes('@')) return undefined
  try {
    return new URL(`${scheme}://${authority}`).origin
  } catch {
    return undefined
  }
}

/**
 * `url` with the target's URL at its start (absolute, or scheme-relative `//host/...`) replaced by the
 * gateway's origin; undefined when it does not start with the target's URL. Only the whole target URL
 * (origin and base path, then '/', '?', '#' or nothing) is replaced, as nginx's `proxy_redirect default`
 * does: a URL of the target's origin outside its base path maps to no path of the gateway, and a relative
 * URL names no address, so both stay as they are.
 */
export function rewriteUrl (url: string, target: TargetUrl, gateway: string): string | undefined {
  let scheme: string
  let start: number
  if (url.startsWith('//')) {
    // The client resolves a scheme-relative URL with its own scheme: the gateway's, which replaces it anyway.
    scheme = target.origin.slice(0, target.origin.indexOf(':'))
    start = 2
  } else {
    const colon = url.indexOf('://')
    if (colon !== 4 && colon !== 5) return undefined
    scheme = url.slice(0, colon).toLowerCase()
    if (scheme !== 'http' && scheme !== 'https') return undefined
    start = colon + 3
  }
  const end = authorityEnd(url, start)
  if (originOf(scheme, url.slice(start, end)) !== target.origin) return undefined
  const base = target.basePath
  if (base !== '' && !url.startsWith(base, end)) return undefined
  const rest = end + base.length
  if (rest < url.length) {
    const c = url.charCodeAt(rest)
    if (c !== 47 && c !== 63 && c !== 35) return undefined
  }
  const tail = url.slice(rest)
  return gateway + (tail.charCodeAt(0) === 47 ? tail : '/' + tail)
}

function rewriteRefresh (value: string, target: TargetUrl, gateway: string): string | undefined {
  const parts = REFRESH.exec(value)
  if (parts === null) return undefined
  const url = rewriteUrl(parts[3], target, gateway)
  return url === undefined ? undefined : parts[1] + parts[2] + url + parts[2] + parts[4]
}

type Rewrite = (value: string, target: TargetUrl, gateway: string) => string | undefined

function rewriteHeader (headers: Headers, name: string, rewrite: Rewrite, target: TargetUrl, gateway: string): void {
  const value = headers[name]
  if (typeof value === 'string') {
    headers[name] = rewrite(value, target, gateway) ?? value
  } else if (value !== undefined) {
    headers[name] = value.map((one) => rewrite(one, target, gateway) ?? one)
  }
}

/**
 * Rewrites, in place, the `Location`, `Content-Location` and `Refresh` headers of an answer that name the
 * target's own URL, so that the client is sent to the gateway rather than to an address it cannot reach (or
 * must not learn). Upstreams build such URLs from the Host header they got, which is the target's own.
 */
export function rewriteOwnUrls (headers: Headers, target: TargetUrl, request: GatewayRequest): void {
  const gateway = gatewayOrigin(request)
  for (const name of URL_HEADERS) rewriteHeader(headers, name, rewriteUrl, target, gateway)
  rewriteHeader(headers, 'refresh', rewriteRefresh, target, gateway)
}

/** The pool option `rewriteLocation`: on unless turned off. */
export function resolveRewriteLocation (pool: string, value: unknown): boolean {
  if (value === undefined || value === null) return true
  if (typeof value !== 'boolean') throw invalidOption(pool, 'rewriteLocation', value, 'must be true or false')
  return value
}
