import { createHash, createSecretKey, type KeyObject } from 'node:crypto'
import { OptionReader, type OptionKey } from '../options/reader'
import type { AffinityCodec } from './codec'
import { HmacCodec } from './hmac-codec'
import { SignerCodec, type CookieSigner } from './signer-codec'

export type { CookieSigner } from './signer-codec'

/** Cookie-based session affinity of a pool (pool option `affinity`). */
export interface AffinityOptions {
  /**
   * HMAC-SHA256 keys, at least 16 bytes each (32 random bytes recommended).
   * The first signs new cookies; every one is accepted, so a list rotates keys.
   * Or a signer with `sign`/`unsign`, such as @fastify/cookie's `new Signer(keys)`.
   */
  secret: string | Buffer | Array<string | Buffer> | CookieSigner
  /** Cookie name (default `lb_` plus the pool name, made cookie-safe). */
  cookie?: string
  /**
   * Lifetime in seconds, sent as Max-Age and enforced by the gateway from the
   * signed value (default: none, a browser-session cookie).
   */
  maxAge?: number
  /**
   * Seconds without a visit after which the cookie expires (a sliding
   * session): each visit keeps it alive, and the cookie is issued again with a
   * new renewal time at most once per quarter of this. With `maxAge` too,
   * whichever ends first (default: none).
   */
  idleTimeout?: number
  /** Cookie Path (default '/'). */
  path?: string
  /** Cookie Domain (default: none, the gateway's host only). */
  domain?: string
  /** Cookie SameSite (default 'lax'). */
  sameSite?: 'lax' | 'strict' | 'none'
  /** Cookie Secure: true, false, or 'auto' for requests that came over https (default 'auto'). */
  secure?: boolean | 'auto'
  /** Cookie HttpOnly (default true). */
  httpOnly?: boolean
  /**
   * When the pinned target is unhealthy, ejected or gone, answer 503 instead of
   * moving the client, and never fail a pinned request over elsewhere (default false).
   */
  strict?: boolean
}

export interface ResolvedAffinity {
  cookie: string
  /** Signs and verifies the cookie's values: the plugin's HMAC, or the user's signer. */
  codec: AffinityCodec
  /** Seconds, 0 for a browser-session cookie. */
  maxAge: number
  /** Seconds without a visit before the cookie expires, 0 for none. */
  idleTimeout: number
  path: string
  domain: string | undefined
  sameSite: 'lax' | 'strict' | 'none'
  secure: boolean | 'auto'
  httpOnly: boolean
  strict: boolean
}

const KEYS = new Set(['secret', 'cookie', 'maxAge', 'idleTimeout', 'path', 'domain', 'sameSite', 'secure', 'httpOnly', 'strict'])
/** RFC 6265 cookie-name: an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/
const PATH = /^\/[\x21-\x3a\x3c-\x7e]*$/
const DOMAIN = /^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/
/** Browsers cap cookie lifetimes at 400 days. */
const MAX_AGE_LIMIT = 400 * 24 * 3600
const MIN_SECRET_BYTES = 16
/** Times are carried to the second: a one-second window could end the instant a cookie is issued. */
const MIN_IDLE_TIMEOUT = 2
const IDLE_RULE = `must be 0 (none) or a whole number of seconds from ${MIN_IDLE_TIMEOUT} to ${MAX_AGE_LIMIT}`

/**
 * The default cookie name: `lb_<pool>` when the pool name is cookie-safe,
 * otherwise its safe characters plus a short hash of the name, so inline pools
 * named after routes ('/sticky/*') get distinct, stable names on every replica.
 */
export function defaultCookieName (pool: string): string {
  if (/^[A-Za-z0-9_-]{1,40}$/.test(pool)) return `lb_${pool}`
  const safe = pool.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 32)
  const digest = createHash('sha256').update(pool).digest('hex').slice(0, 6)
  return safe === '' ? `lb_${digest}` : `lb_${safe}_${digest}`
}

function secretKey (at: OptionReader, key: OptionKey): KeyObject {
  const secret = at.value(key)
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.isBuffer(secret) ? secret : null
  // The value of a secret never goes into an error message: only its type and length.
  if (bytes === null) at.fail(key, 'must be a string or a Buffer', `<${typeof secret}>`)
  if (bytes.length < MIN_SECRET_BYTES) at.fail(key, `must be at least ${MIN_SECRET_BYTES} bytes`, `<${bytes.length} bytes>`)
  return createSecretKey(Buffer.from(bytes))
}

function isSigner (value: unknown): value is CookieSigner {
  const signer = value as Partial<CookieSigner> | null
  return typeof signer === 'object' && signer !== null && typeof signer.sign === 'function' && typeof signer.unsign === 'function'
}

const SECRET_SHAPE = 'a string or Buffer of at least 16 bytes, a list of them, or a signer with sign and unsign functions'

function secretCodec (r: OptionReader, cookie: string): AffinityCodec {
  const value = r.value('secret')
  if (value === undefined || (Array.isArray(value) && value.length === 0)) r.fail('secret', `is required: ${SECRET_SHAPE}`)
  if (isSigner(value)) return new SignerCodec(cookie, value)
  if (!Array.isArray(value) && typeof value !== 'string' && !Buffer.isBuffer(value)) r.failSecret('secret', `must be ${SECRET_SHAPE}`)
  return new HmacCodec(cookie, r.oneOrMany('secret', secretKey))
}

/** Validates a pool's `affinity` option; null when the pool has none. Throws FST_LB_INVALID_OPTION. */
export function resolveAffinity (pool: string, value: unknown): ResolvedAffinity | null {
  if (value === undefined || value === false) return null
  const r: OptionReader = OptionReader.record(pool, 'affinity', value, KEYS, 'affinity', 'must be an object with at least { secret }')
  const maxAge = r.integer('maxAge', 0, 0, MAX_AGE_LIMIT, `must be a whole number of seconds from 0 (a browser-session cookie) to ${MAX_AGE_LIMIT}`)
  const idleTimeout = r.integer('idleTimeout', 0, 0, MAX_AGE_LIMIT, IDLE_RULE)
  if (idleTimeout > 0 && idleTimeout < MIN_IDLE_TIMEOUT) r.fail('idleTimeout', IDLE_RULE)
  const sameSite = r.oneOf('sameSite', 'lax', ['lax', 'strict', 'none'], "must be 'lax', 'strict' or 'none'")
  const secure = r.value('secure') ?? 'auto'
  if (secure !== 'auto' && typeof secure !== 'boolean') r.fail('secure', "must be true, false or 'auto'", secure)
  if (sameSite === 'none' && secure === false) r.fail('secure', "must not be false with sameSite 'none': browsers drop such cookies", secure)
  const cookie = r.optionalMatching('cookie', TOKEN, 'must be a cookie name: 1 to 64 token characters') ?? defaultCookieName(pool)
  return {
    cookie,
    codec: secretCodec(r, cookie),
    maxAge,
    idleTimeout,
    path: r.optionalMatching('path', PATH, "must start with '/' and hold no ';', spaces or control characters") ?? '/',
    domain: r.optionalMatching('domain', DOMAIN, 'must be a host name'),
    sameSite,
    secure,
    httpOnly: r.optionalBoolean('httpOnly') ?? true,
    strict: r.optionalBoolean('strict') ?? false
  }
}
