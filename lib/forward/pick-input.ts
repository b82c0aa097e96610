import type { FastifyRequest } from 'fastify'
import { cutKey, readCookie } from '../balancers/hash/keys'
import type { HashKeySource } from '../options/resolve'
import type { Pool } from '../pool/pool'

function first (value: unknown): string | undefined {
  if (typeof value === 'string') return cutKey(value)
  if (Array.isArray(value) && typeof value[0] === 'string') return cutKey(value[0])
  return undefined
}

/** The hash key of a request, or undefined when it has none (the pool then falls back). */
export function readHashKey (source: HashKeySource, request: FastifyRequest, ip: string): string | undefined {
  if (source === 'ip') return ip === '' ? request.ip : ip
  if (typeof source === 'function') {
    const key = source(request)
    return typeof key === 'string' ? cutKey(key) : undefined
  }
  if ('header' in source) return first(request.headers[source.header])
  if ('cookie' in source) {
    const value = readCookie(request.headers.cookie, source.cookie)
    return value === undefined ? undefined : cutKey(value)
  }
  if ('query' in source) return first((request.query as Record<string, unknown> | undefined)?.[source.query])
  return first((request.params as Record<string, unknown> | undefined)?.[source.param])
}

/**
 * Fills `into` with what the pool's picks read of a request: its client address
 * and hash key, each only when the pool's algorithm uses it.
 */
export function readPickInput<T extends { key: string | undefined, ip: string }> (pool: Pool, request: FastifyRequest, into: T): T {
  if (pool.needsIp) into.ip = request.ip
  if (pool.needsKey) into.key = readHashKey(pool.options.hashKey, request, into.ip)
  return into
}
