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
}

export interface ResolvedCluster {
  metrics: ClusterMetricsMode
  timeout: number
}

const KEYS = new Set(['metrics', 'timeout'])
const MODES: readonly ClusterMetricsMode[] = ['aggregate', 'worker']

/** Validates the `cluster` plugin option; null when off (false or left out). */
export function resolveCluster (value: unknown): ResolvedCluster | null {
  if (value === undefined || value === false) return null
  const r = OptionReader.record('(plugin)', 'cluster', value === true ? {} : value, KEYS, 'cluster', 'must be true, false or { metrics?, timeout? }')
  return {
    metrics: r.oneOf('metrics', 'aggregate', MODES, `must be one of ${MODES.join(', ')}`),
    timeout: r.integer('timeout', 2000, 10, 60_000)
  }
}
