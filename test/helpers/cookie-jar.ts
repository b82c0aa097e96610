import type { Answer, Client } from './gateway'

/** One Set-Cookie header, split into its name, value and lower-cased attributes. */
export interface SetCookie {
  name: string
  value: string
  attributes: Record<string, string | true>
}

export function parseSetCookie (header: string): SetCookie {
  const [pair, ...rest] = header.split(';')
  const eq = pair.indexOf('=')
  const attributes: Record<string, string | true> = {}
  for (const part of rest) {
    const at = part.indexOf('=')
    if (at === -1) attributes[part.trim().toLowerCase()] = true
    else attributes[part.slice(0, at).trim().toLowerCase()] = part.slice(at + 1).trim()
  }
  return { name: pair.slice(0, eq).trim(), value: decodeURIComponent(pair.slice(eq + 1).trim()), attributes }
}

/** The Set-Cookie headers of an answer, parsed. */
export function setCookies (res: Answer): SetCookie[] {
  const raw = res.headers['set-cookie']
  if (raw === undefined) return []
  return (Array.isArray(raw) ? raw : [raw]).map(parseSetCookie)
}

/**
 * A browser's cookie handling, as little of it as the tests need: keeps what
 * Set-Cookie says (a Max-Age of 0 deletes), sends it back in Cookie.
 */
export class CookieJar {
  readonly cookies = new Map<string, string>()
  /** The Set-Cookie headers of the last answer. */
  last: SetCookie[] = []

  constructor (readonly client: Client) {}

  header (): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  async send (url: string, init: Parameters<Client['send']>[1] = {}): Promise<Answer> {
    const headers = { ...init.headers }
    if (this.cookies.size > 0) headers.cookie = this.header()
    const res = await this.client.send(url, { ...init, headers })
    this.last = setCookies(res)
    for (const cookie of this.last) {
      if (cookie.attributes['max-age'] === '0') this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
    return res
  }
}
