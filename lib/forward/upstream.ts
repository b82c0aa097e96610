import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import type { ResolvedTls } from '../options/tls'
import type { Pool } from '../pool/pool'

/** How the gateway reaches targets, from the plugin options (the same for tunnels as for requests). */
export interface UpstreamClient {
  readonly connectTimeout: number
  readonly tls: ResolvedTls
}

/**
 * A pool as the Fastify front-end serves it: the pool, the reply-from options
 * of its tries (built once), and the pool its `fallback` names, if any.
 */
export class Upstream {
  /** Wired once every pool exists: a fallback may name a pool declared after this one. */
  fallbackTo: Upstream | null = null

  constructor (readonly pool: Pool, readonly fromOptions: FastifyReplyFromHooks, readonly client: UpstreamClient) {}
}
