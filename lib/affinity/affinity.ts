import type { ResolvedAffinity } from './options'
import { ConnectionMemo } from './codec'
import { readCookie } from '../balancers/hash/keys'
import { hasRoom, mayServePinned } from '../pool/serving'
import type { Target } from '../pool/target'
import type { PickInput } from '../balancers/balancer'

/**
 * What became of a request's affinity cookie, as pools emit it ('affinity'
 * event) and count it: honoured; absent (a new client); valid but naming a
 * target that cannot take it, or one the request failed over from (the client
 * moves); invalid (forged, tampered, malformed, oversized, issued under a longer
 * lifetime than the configured one); signed by us but past its `maxAge` or its
 * `idleTimeout` (a client that came back too late, apart from forgeries).
 */
export type AffinityResult = 'hit' | 'miss' | 'reassigned' | 'rejected' | 'expired'

export type AffinityCounts = Record<AffinityResult, number>

function nowSeconds (): number {
  return Math.floor(Date.now() / 1000)
}

/**
 * Under an idle timeout, a cookie is issued again once this share of the
 * window has passed since it was: a client that keeps coming is never idle
 * for longer, and a busy one gets a Set-Cookie now and then, not with every answer.
 */
const RENEW_SHARE = 4

const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const

/**
 * The name under which a browser sends the cookie of a Set-Cookie header back:
 * an upstream's `lb_s =v` or `lb_s\t=v` is stored as `lb_s` (RFC 6265 section
 * 5.2 trims around the name), so comparing the header's first bytes misses it.
 * A pair without '=' is a nameless cookie (RFC 6265bis), sent back as its bare
 * value without '=', under no name. A nameless cookie whose value has a '='
 * (`=lb_s=v`) is sent back as that value, `lb_s=v`, which every server reads
 * as a cookie named lb_s: its name is the one in its value. trim() takes off SP
 * and HTAB as browsers do, and the other whitespace readCookie trims off the
 * names of the Cookie header: no name the gateway would read as its own slips by.
 */
function sentBackAs (header: string): string {
  let end = header.indexOf(';')
  if (end === -1) end = header.length
  const eq = header.indexOf('=')
  if (eq === -1 || eq > end) return ''
  const name = header.slice(0, eq).trim()
  if (name !== '') return name
  const inner = header.indexOf('=', eq + 1)
  return inner === -1 || inner > end ? '' : header.slice(eq + 1, inner).trim()
}

/**
 * What follows `name=value` in the pool's Set-Cookie header, without and with
 * `Secure`: every part was validated at register, so it is written once here.
 */
function cookieAttributes (options: ResolvedAffinity, secure: boolean): string {
  let text = ''
  if (options.domain !== undefined) text += `; Domain=${options.domain}`
  text += `; Path=${options.path}`
  if (options.httpOnly) text += '; HttpOnly'
  if (secure) text += '; Secure'
  return text + `; SameSite=${SAME_SITE[options.sameSite]}`
}

/** The answer's headers, as far as affinity writes them (a Fastify reply has these methods). */
export interface AnswerHeaders {
  getHeader: (name: string) => unknown
  header: (name: string, value: string | string[]) => unknown
  removeHeader: (name: string) => unknown
}

/**
 * What affinity reads of one request and writes to its answer: plain members
 * that any front-end can provide (route/ hands over its per-request state).
 */
export interface AffinityExchange extends PickInput {
  /** The Cookie header as the client sent it. */
  readonly cookieHeader: string | undefined
  /** The request's cookies when a cookie plugin parsed them (@fastify/cookie's `request.cookies`), else null. */
  readonly cookies: Readonly<Record<string, unknown>> | null
  /** The client's connection: the value last verified on it needs no second HMAC. */
  readonly connection: object | null
  /** Whether the client reached the gateway over https (for `secure: 'auto'`). */
  readonly secure: boolean
  /** The Set-Cookie header of the pool's cookie this request was given, if any. */
  issuedCookie: string | null
  readonly answer: AnswerHeaders
}

/** The value a pool's new clients get from one target during one second: the same for all of them. */
interface Issued {
  expiry: number
  renewed: number
  value: string
}

/**
 * What affinity needs of the pool that owns it: declared here, so that the
 * pool, which creates its affinity, and the affinity do not import each other.
 */
export interface AffinityPool {
  readonly eligible: readonly Target[]
  get: (id: string) => Target | undefined
  pick: (input: PickInput) => Target | undefined
  listenerCount: (event: 'affinity') => number
  emit: (event: 'affinity', result: AffinityResult) => boolean
}

/**
 * Signed-cookie affinity of one pool. The cookie holds the target id, an
 * optional expiry and an HMAC: the gateway keeps nothing per client, and any
 * replica with the same secret reads it. Verifying costs one HMAC per cookie
 * value a connection brings (a returning client sends the same value on every
 * request of its connection); signing happens only for new or moved clients.
 */
export class Affinity {
  /** Results so far, for metrics read at scrape time; the pool also emits each one when someone listens. */
  readonly counts: AffinityCounts
  /** Set-Cookie attributes for plain and secure connections. */
  private readonly attributes: readonly [string, string]
  /** `name=` of the Set-Cookie header. */
  private readonly prefix: string
  /**
   * The cookie value last signed for each target. Its expiry moves once a
   * second, so new clients of a busy pool share one HMAC per target and second
   * instead of one each; entries go with their targets.
   */
  private readonly issued = new WeakMap<Target, Issued>()
  /** The pool's eligible array the set below was built from: rebuilt when the pool replaces it. */
  private eligibleSeen: readonly Target[] | null = null
  private eligibleSet = new Set<Target>()
  /** What the last successful verify() found, read right after it (no allocation on the hot path). */
  private verifiedExpiry = 0
  private verifiedRenewed = 0
  private verifiedByOldKey = false
  /** Why the last verify() refused its value: a bad one, or one whose time ran out. */
  private refusal: 'rejected' | 'expired' = 'rejected'
  /** The last pick refused a strictly pinned client because its target is full (read right after pick()). */
  pinnedFull = false
  /** Signs and verifies cookie values, remembering the last one verified on each connection. */
  private readonly codec: ConnectionMemo

  /** `counts`: those of the affinity this one replaces (pool.configure), so the metrics' counters go on. */
  constructor (readonly pool: AffinityPool, readonly options: ResolvedAffinity, counts?: AffinityCounts) {
    this.counts = { hit: 0, miss: 0, reassigned: 0, rejected: 0, expired: 0, ...counts }
    this.attributes = [cookieAttributes(options, options.secure === true), cookieAttributes(options, options.secure !== false)]
    this.prefix = `${options.cookie}=`
    this.codec = new ConnectionMemo(options.codec)
  }

  /**
   * The target of a request's first try: the pinned one when the cookie is
   * valid and the target can take it (a draining target keeps its clients),
   * otherwise the pool's pick, with a new cookie. Undefined when there is no
   * target, or in strict mode when the pinned one cannot take the request.
   */
  pick (x: AffinityExchange): Target | undefined {
    const value = this.read(x)
    if (value === undefined) return this.assign(x, 'miss')
    const id = this.verify(value, x)
    if (id === null) return this.assign(x, this.refusal)
    const pinned = this.pool.get(id)
    if (pinned !== undefined && this.honours(pinned)) {
      this.count('hit')
      // Re-signed with the current key, same target and expiry, so the old key can be retired; renewed when its idle window is due.
      if (this.verifiedByOldKey || this.renewalDue()) this.renew(x, pinned)
      return pinned
    }
    if (this.options.strict) {
      // A target that left the pool does not come back for this client: say so once, then start over.
      if (pinned === undefined) this.setHeader(x, `${this.prefix}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT`)
      this.pinnedFull = pinned !== undefined && pinned.full
      return undefined
    }
    return this.assign(x, 'reassigned')
  }

  /** Whether the request carries a valid cookie of this pool (a split keeps such a client on this pool's arm). */
  carries (x: AffinityExchange): boolean {
    const value = this.read(x)
    return value !== undefined && this.verify(value, x) !== null
  }

  /** Strict mode: whether the request is pinned, so failover must not take it to another target. */
  holds (x: AffinityExchange): boolean {
    return this.options.strict && this.carries(x)
  }

  /**
   * The request failed over from its first target and was answered by another:
   * the cookie follows. A client that was pinned to the first one has moved
   * (counted as reassigned); any other just gets the cookie of the target that answered.
   */
  follow (x: AffinityExchange, first: Target, target: Target): void {
    const value = this.read(x)
    if (value !== undefined && this.verify(value, x) === first.id) this.count('reassigned')
    this.issueFresh(x, target)
  }

  private assign (x: AffinityExchange, result: AffinityResult): Target | undefined {
    this.count(result)
    const target = this.pool.pick(x)
    if (target !== undefined) this.issueFresh(x, target)
    return target
  }

  private count (result: AffinityResult): void {
    this.counts[result]++
    const pool = this.pool
    if (pool.listenerCount('affinity') > 0) pool.emit('affinity', result)
  }

  /** Whether the cookie just verified was issued a quarter of the idle window ago or more (or before there was one). */
  private renewalDue (): boolean {
    const idle = this.options.idleTimeout
    return idle !== 0 && (this.verifiedRenewed === 0 || (nowSeconds() - this.verifiedRenewed) * RENEW_SHARE >= idle)
  }

  /** A cookie pinning the client to target for the configured lifetime from now. */
  private issueFresh (x: AffinityExchange, target: Target): void {
    const now = nowSeconds()
    this.issue(x, target, this.options.maxAge === 0 ? 0 : now + this.options.maxAge, now, true)
  }

  /** The verified cookie again, same target and expiry, renewed now under an idle timeout. */
  private renew (x: AffinityExchange, target: Target): void {
    const now = nowSeconds()
    const expiry = this.verifiedExpiry
    // Without maxAge a renewal is the value a new client gets this second, and shares it.
    this.issue(x, target, expiry, now, expiry === 0)
  }

  /** `shared`: the value new clients of target get this second, signed once for all of them. */
  private issue (x: AffinityExchange, target: Target, expiry: number, now: number, shared: boolean): void {
    const idle = this.options.idleTimeout
    const renewed = idle === 0 ? 0 : now
    let value: string
    const issued = shared ? this.issued.get(target) : undefined
    if (issued !== undefined && issued.expiry === expiry && issued.renewed === renewed) {
      value = issued.value
    } else {
      value = this.codec.encode(target.id, expiry, renewed)
      if (issued !== undefined) {
        issued.expiry = expiry
        issued.renewed = renewed
        issued.value = value
      } else if (shared) {
        this.issued.set(target, { expiry, renewed, value })
      }
    }
    // The browser keeps the cookie as long as the gateway would take it: until its expiry or the end of its idle window.
    let lifetime = expiry === 0 ? Infinity : expiry - now
    if (idle !== 0) lifetime = Math.min(lifetime, idle)
    this.setHeader(x, this.prefix + value + (lifetime === Infinity ? '' : `; Max-Age=${Math.max(0, lifetime)}`))
  }

  /**
   * Sets the pool's cookie, replacing one this request was given before (a
   * request that failed over gets the cookie of the target that answered):
   * beside any other Set-Cookie header, the gateway's or the upstream's.
   */
  private setHeader (x: AffinityExchange, cookie: string): void {
    const secure = this.options.secure === 'auto' ? x.secure : this.options.secure
    const header = cookie + this.attributes[secure ? 1 : 0]
    x.issuedCookie = header
    if (x.answer.getHeader('set-cookie') === undefined) x.answer.header('set-cookie', header)
    else this.keepOwn(x)
  }

  /**
   * Makes the cookie this request was given the only one of the pool's name
   * among the answer's Set-Cookie headers, and the last: other cookies of that
   * name (an upstream's, one issued for a target the request failed over from)
   * are dropped, by the name a browser stores them under; every other cookie
   * is kept.
   */
  keepOwn (x: AffinityExchange): void {
    const answer = x.answer
    const existing = answer.getHeader('set-cookie')
    const name = this.options.cookie
    const list = existing === undefined ? [] : (Array.isArray(existing) ? existing : [existing]).map(String).filter((h) => sentBackAs(h) !== name)
    const own = x.issuedCookie
    if (own !== null) list.push(own)
    answer.removeHeader('set-cookie')
    if (list.length > 0) answer.header('set-cookie', list)
  }

  private read (x: AffinityExchange): string | undefined {
    // The cookies @fastify/cookie parsed, when the gateway registered it; otherwise from the header itself. The first occurrence counts either way.
    const parsed = x.cookies
    if (parsed === null) return readCookie(x.cookieHeader, this.options.cookie)
    const value = parsed[this.options.cookie]
    return typeof value === 'string' ? value : undefined
  }

  /** The target id of a valid cookie value, or null with the reason in `refusal`. */
  private verify (value: string, x: AffinityExchange): string | null {
    const pin = this.codec.decode(value, x.connection)
    if (pin === null) return this.refuse('rejected')
    const { expiry, renewed } = pin
    const { maxAge, idleTimeout } = this.options
    // The clock is read only for cookies that carry a time to check.
    const now = expiry === 0 && idleTimeout === 0 ? 0 : nowSeconds()
    if (expiry === 0) {
      // Issued without expiry: refused once a lifetime is configured.
      if (maxAge !== 0) return this.refuse('rejected')
    } else {
      // Issued under a longer lifetime than the configured one (so lowering maxAge takes effect at once), or expired.
      if (maxAge !== 0 && expiry > now + maxAge) return this.refuse('rejected')
      if (expiry <= now) return this.refuse('expired')
    }
    // A cookie without a renewal time (issued before the idle timeout was set) is taken and renewed at once.
    if (idleTimeout !== 0 && renewed !== 0) {
      if (renewed > now + idleTimeout) return this.refuse('rejected')
      if (now - renewed >= idleTimeout) return this.refuse('expired')
    }
    this.verifiedExpiry = expiry
    this.verifiedRenewed = renewed
    this.verifiedByOldKey = pin.renew
    return pin.id
  }

  private refuse (why: 'rejected' | 'expired'): null {
    this.refusal = why
    return null
  }

  /**
   * Whether a pinned target may take its client's request: it has room, and the
   * pool would pick it (in panic mode that includes unhealthy targets), or the
   * serving rule lets it keep its pinned clients (draining, or disabled with keepSticky).
   */
  private honours (target: Target): boolean {
    const eligible = this.pool.eligible
    if (eligible !== this.eligibleSeen) {
      // The pool replaces its eligible array on every change: one rebuild per change, not per request.
      this.eligibleSet = new Set(eligible)
      this.eligibleSeen = eligible
    }
    // Hash tables keep full targets among the eligible ones (see pool/tiers.ts): a full one serves nobody, pinned or not.
    return hasRoom(target) && (this.eligibleSet.has(target) || mayServePinned(target))
  }
}
