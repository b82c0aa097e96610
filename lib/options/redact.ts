/** What replaces a user name or a password in a URL shown in a message. */
const MASK = '***'

/** A scheme followed by '//', kept in front of a masked authority so that the URL stays recognisable. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//

/**
 * `value` with the credentials of a URL replaced by `***`, for error messages and logs:
 * `http://***:***@host:8080/`. Where a URL parser finds a host, it decides what the credentials are.
 * Where it does not (an invalid port; no `//`, as in `user:secret@host`), whatever lies between the scheme and
 * the last '@' may be credentials once a ':' comes before that '@', so all of it is masked. Strings without an '@'
 * hold no credentials and come back as they are.
 */
export function redactUrl (value: string): string {
  const at = value.lastIndexOf('@')
  if (at === -1) return value
  let parsed: URL | null = null
  try {
    parsed = new URL(value)
  } catch {}
  if (parsed !== null) {
    if (parsed.username !== '' || parsed.password !== '') {
      const user = parsed.username === '' ? '' : MASK
      const password = parsed.password === '' ? '' : ':' + MASK
      return `${parsed.protocol}//${user}${password}@${parsed.host}${parsed.pathname}${parsed.search}${parsed.hash}`
    }
    if (parsed.host !== '') return value
  }
  if (!value.slice(0, at).includes(':')) return value
  return (SCHEME.exec(value)?.[0] ?? '') + MASK + value.slice(at)
}
