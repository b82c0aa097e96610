import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import type { UpstreamClient } from './upstream-client'
import type { Pool } from '../pool/pool'
import type { Mirror } from './mirror'

/**
 * A pool as the Fastify front-end serves it: the pool, the reply-from options
 * of its tries (built once), and the pool its `fallback` names, if any.
 */
export class Upstream {
  /** Wired once every pool exists: a fallback may name a pool declared after this one. */
  fallbackTo: Upstream | null = null
  /** The pool's `mirror`, wired as its fallback is. */
  mirror: Mirror | null = null

  constructor (readonly pool: Pool, readonly fromOptions: FastifyReplyFromHooks, readonly client: UpstreamClient) {}
}
