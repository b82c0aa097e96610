import { OptionReader } from '../options/reader'

/** How one scrape of /metrics answers for every worker of the machine. */
export type ClusterMetricsMode = 'aggregate' | 'worker'

export interface ClusterOptions {
  /**
   * 'aggregate' (default): prom-client's AggregatorRegistry sums counters and histograms over the workers and
   * aggregates each gauge as docs/cluster.md lists; 'worker': every worker's series with a `worker` label.
   */
  metrics?: ClusterMetricsMode
  /** ms a worker waits for the primary's answer (joining, a scrape, the status page) before it goes on alone (default 2000). */
  timeout?: number
  /**
   * Without a primary of the plugin's (PM2's cluster mode): the Unix socket the workers elect a hub on
   * (default: a path under os.tmpdir() derived from the app and these options). Absolute, at most 100 characters.
   */
  socket?: string
}

export interface ResolvedCluster {
  metrics: ClusterMetricsMode
  timeout: number
  socket: string | null
}

const KEYS = new Set(['metrics', 'timeout', 'socket'])
const MODES: readonly ClusterMetricsMode[] = ['aggregate', 'worker']

/** Validates the `cluster` plugin option; null when off (false or left out). */
export function resolveCluster (value: unknown): ResolvedCluster | null {
  if (value === undefined || value === false) return null
  const r = OptionReader.record('(plugin)', 'cluster', value === true ? {} : value, KEYS, 'cluster', 'must be true, false or { metrics?, timeout?, socket? }')
  return {
    metrics: r.oneOf('metrics', 'aggregate', MODES, `must be one of ${MODES.join(', ')}`),
    timeout: r.integer('timeout', 2000, 10, 60_000),
    // Unix socket paths are limited to 104 to 108 bytes, by platform.
    socket: r.optionalMatching('socket', /^\/.{1,99}$/, 'must be an absolute path of at most 100 characters') ?? null
  }
}
