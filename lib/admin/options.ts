import { OptionReader } from '../options/reader'
import { readGuards, type RouteGuard } from '../observability/options'

/** The admin API (docs/admin.md): off unless given; refused at startup without a guard unless `allowUnguarded`. */
export interface AdminOptions {
  /** Where its routes live (default '/lb/admin'). */
  prefix?: string
  /** onRequest hook(s) run before every admin route: the guard that refuses unauthenticated calls. */
  onRequest?: RouteGuard | RouteGuard[]
  /** Registers the routes without a guard (default false): only for a gateway no one else can reach. */
  allowUnguarded?: boolean
}

export interface ResolvedAdminOptions {
  prefix: string
  onRequest: RouteGuard[]
}

const SCOPE = '(plugin)'
const ADMIN_KEYS = new Set(['prefix', 'onRequest', 'allowUnguarded'])
/** Plain segments: no parameter (':'), wildcard ('*') or trailing '/', which would change the routes under it. */
const PREFIX = /^(\/[A-Za-z0-9._~-]+)+$/

/** Validates the `admin` plugin option; null when the admin API is off (left out or false). */
export function resolveAdminOptions (value: unknown): ResolvedAdminOptions | null {
  if (value === undefined || value === false) return null
  const r = OptionReader.record(SCOPE, 'admin', value, ADMIN_KEYS, 'admin', 'must be an object or false')
  const prefix = r.matching('prefix', '/lb/admin', PREFIX, 'must be a path of segments of A-Z a-z 0-9 . _ ~ - such as "/lb/admin"')
  const onRequest = readGuards(r)
  const allowUnguarded = r.boolean('allowUnguarded', false)
  if (onRequest.length === 0 && !allowUnguarded) {
    // The routes change where traffic goes: registering them open by mistake must not be possible.
    r.fail('onRequest', 'the admin API needs a guard: an onRequest hook that refuses unauthenticated calls, or allowUnguarded: true')
  }
  return { prefix, onRequest }
}
