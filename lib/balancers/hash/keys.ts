import type { FastifyRequest } from 'fastify'
import type { HashKeySource } from '../../options/resolve'

/** Longest key we hash: a longer one is cut, so a huge header cannot cost more than this. */
const MAX_KEY_LENGTH = 1024

function cut (value: string): string | undefined {
  if (value.length === 0) return undefined
  return value.length > MAX_KEY_LENGTH ? value.slice(0, MAX_KEY_LENGTH) : value
}

function first (value: unknown): string | undefined {
  if (typeof value === 'string') return cut(value)
  if (Array.isArray(value) && typeof value[0] === 'string') return cut(value[0])
  return undefined
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

/** The hash key of a request, or undefined when it has none (the pool then falls back). */
export function readHashKey (source: HashKeySource, request: FastifyRequest, ip: string): string | undefined {
  if (source === 'ip') return ip === '' ? request.ip : ip
  if (typeof source === 'function') {
    const key = source(request)
    return typeof key === 'string' ? cut(key) : undefined
  }
  if ('header' in source) return first(request.headers[source.header])
  if ('cookie' in source) {
    const value = readCookie(request.headers.cookie, source.cookie)
    return value === undefined ? undefined : cut(value)
  }
  if ('query' in source) return first((request.query as Record<string, unknown> | undefined)?.[source.query])
  return first((request.params as Record<string, unknown> | undefined)?.[source.param])
}
