import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import type { MetricsRegistry } from '../observability/options'
import type { ClusterMetricsMode } from './options'
import type { Gathered } from './messages'

type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>

/**
 * What one worker answers when a scrape gathers metrics: its registry as
 * prom-client's JSON, each series labelled with the worker's id in 'worker' mode.
 */
export async function workerMetrics (registry: MetricsRegistry, mode: ClusterMetricsMode, worker: number): Promise<MetricsJson> {
  const metrics = await registry.getMetricsAsJSON()
  if (mode === 'worker') {
    const label = String(worker)
    for (const metric of metrics) for (const value of metric.values) value.labels = { ...value.labels, worker: label }
  }
  return metrics
}

/**
 * The exposition of the machine, from every worker's answer: prom-client's
 * AggregatorRegistry merges the series of the same name and labels by each
 * metric's aggregator (counters and histograms summed, gauges as the plugin
 * declares them); with a `worker` label no two series share labels, so each is kept.
 */
export async function machineMetrics (gathered: readonly Gathered[], contentType: MetricsRegistry['contentType']): Promise<string> {
  const lists = gathered.map((g) => g.data).filter((d): d is MetricsJson => Array.isArray(d))
  const registry = AggregatorRegistry.aggregate(lists)
  registry.setContentType(contentType)
  return await registry.metrics()
}
