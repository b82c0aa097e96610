import type { ResolvedTls } from '../options/tls'

/** How the gateway reaches targets, from the plugin options: the same for tunnels and mirrored copies as for requests. */
export interface UpstreamClient {
  readonly connectTimeout: number
  readonly tls: ResolvedTls
}
