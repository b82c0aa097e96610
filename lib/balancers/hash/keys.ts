/** Longest key we hash: a longer one is cut, so a huge header cannot cost more than this. */
const MAX_KEY_LENGTH = 1024

/** A hash key as hashed: undefined when empty, cut to MAX_KEY_LENGTH when longer. */
export function cutKey (value: string): string | undefined {
  if (value.length === 0) return undefined
  return value.length > MAX_KEY_LENGTH ? value.slice(0, MAX_KEY_LENGTH) : value
}

/**
 * Reads one cookie from the Cookie header without a cookie parser, so hashing
 * and affinity work whether or not @fastify/cookie parses requests. The first
 * occurrence counts; '' when it is empty, undefined when it is absent.
 */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const eq = header.indexOf('=', start)
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim()
      if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') value = value.slice(1, -1)
      if (!value.includes('%')) return value
      try {
        return decodeURIComponent(value)
      } catch {
        return value
      }
    }
    start = end + 1
  }
  return undefined
}
