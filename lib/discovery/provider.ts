import type { ResolvedTarget } from '../options/resolve'

/** Where a provider reports what it found. */
export interface DiscoverySink {
  /**
   * The provider's complete current list (it replaces the previous one), and
   * the pool options its source carries beside it (a file's `options`), if any:
   * applied with pool.configure() when they changed; refused options change
   * nothing, the list included.
   */
  update (targets: readonly ResolvedTarget[], policy?: Readonly<Record<string, unknown>>): void
  /** A refresh failed: the last list stays. */
  fail (error: unknown): void
  /** Something the operator should hear about that does not stop the list (e.g. one bad entry left out). */
  warn (message: string): void
}

/** A source of targets: a file, DNS, Consul, etcd. */
export interface Provider {
  /** The provider type, for logs and events. */
  readonly type: string
  /** Starts following the source; the first outcome (update or fail) comes as soon as the source answers. */
  start (sink: DiscoverySink): void
  /** Stops every timer, watcher and connection. */
  stop (): Promise<void>
}

/** What a pool emits as 'discovery' after each refresh of one of its providers. */
export interface DiscoveryEvent {
  /** The provider type: 'file', 'dns', 'consul' or 'etcd'. */
  provider: string
  /** Whether the refresh brought a list; when false, the last list stays. */
  ok: boolean
  /** Targets the provider lists now (its last list when ok is false). */
  targets: number
  /** Why the refresh failed. */
  error?: string
}

/** The message of anything thrown. */
export function messageOf (error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
