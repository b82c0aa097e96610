import { Counter, Gauge, Histogram, type Aggregator } from 'prom-client'
import type { MetricsRegistry } from './options'

/** Label values of one series; the same object is reused at every scrape. */
export type Labels = Readonly<Record<string, string>>

/** Adds one series' value while a scrape collects a metric. */
export type Emit = (labels: Labels, value: number) => void

/**
 * The counts of one histogram series, kept outside prom-client so that an
 * observation is a few array writes: no label hashing, no allocation.
 */
export class HistogramSeries {
  /** Observations per bucket, not cumulative; the last slot holds those above every bound. */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor (readonly labels: Labels, readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]) i++
    this.counts[i]++
    this.sum += value
    this.count++
  }
}

interface ExportedValue {
  labels: Record<string, string | number>
  sharedLabels: Labels
  value: number
  metricName: string
}

/**
 * A prom-client Histogram whose values come from HistogramSeries read at
 * scrape time. prom-client renders a histogram through getForPromString()
 * (and builds get(), the JSON form, on top of it), so overriding that one
 * method keeps text output, JSON output and registry merging intact.
 */
export class LiveHistogram extends Histogram<string> {
  private readonly metricHelp: string
  private readonly metricBase: string
  private readonly bounds: readonly number[]
  private readonly read: () => Iterable<HistogramSeries>

  constructor (registry: MetricsRegistry, name: string, help: string, labelNames: string[], bounds: readonly number[], read: () => Iterable<HistogramSeries>) {
    super({ name, help, labelNames, buckets: [...bounds], registers: [registry] })
    this.metricBase = name
    this.metricHelp = help
    this.bounds = bounds
    this.read = read
  }

  async getForPromString (): Promise<{ name: string, help: string, type: 'histogram', values: ExportedValue[], aggregator: 'sum' }> {
    const values: ExportedValue[] = []
    const bucket = this.metricBase + '_bucket'
    for (const series of this.read()) {
      let cumulative = 0
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i]
        values.push({ labels: { le: this.bounds[i] }, sharedLabels: series.labels, value: cumulative, metricName: bucket })
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: series.labels, value: series.count, metricName: bucket })
      values.push({ labels: {}, sharedLabels: series.labels, value: series.sum, metricName: this.metricBase + '_sum' })
      values.push({ labels: {}, sharedLabels: series.labels, value: series.count, metricName: this.metricBase + '_count' })
    }
    return { name: this.metricBase, help: this.metricHelp, type: 'histogram', values, aggregator: 'sum' }
  }
}

/**
 * A counter or gauge whose series are filled from live state at each scrape:
 * counting happens in plain fields, prom-client only sees the totals.
 * `aggregator` says how prom-client's AggregatorRegistry merges the series of
 * several processes (cluster mode, docs/cluster.md); counters are summed.
 */
export function liveMetric (type: 'counter' | 'gauge', registry: MetricsRegistry, name: string, help: string, labelNames: string[], fill: (emit: Emit) => void, aggregator: Aggregator = 'sum'): void {
  const config = { name, help, labelNames, registers: [registry], aggregator }
  if (type === 'counter') {
    // eslint-disable-next-line no-new -- the registry keeps it
    new Counter({ ...config, collect () { this.reset(); fill((labels, value) => this.inc(labels, value)) } })
  } else {
    // eslint-disable-next-line no-new -- the registry keeps it
    new Gauge({ ...config, collect () { this.reset(); fill((labels, value) => this.set(labels, value)) } })
  }
}
