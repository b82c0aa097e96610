import { escape } from './html-escape'
import { sparkline } from './sparkline'
import type { HistoryReport, TargetHistory } from './status-report'

/** A span of time in words: '5 min', '30 s', '0.1 s'. */
export function duration (ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`
  return `${Math.round(ms / 100) / 10} s`
}

function figure (value: number | null): string {
  if (value === null) return '–'
  return value >= 100 ? String(Math.round(value)) : value.toFixed(1)
}

interface Chart {
  key: 'requests' | 'errors' | 'p99'
  head: string
  what: string
  colour: string
  values: (h: TargetHistory) => ReadonlyArray<number | null> | undefined
}

const CHARTS: readonly Chart[] = [
  { key: 'requests', head: 'Requests/s', what: 'requests per second', colour: '#0969da', values: (h) => h.requestsPerSecond },
  { key: 'errors', head: 'Errors/s', what: 'failed tries per second', colour: '#cf222e', values: (h) => h.errorsPerSecond },
  { key: 'p99', head: 'p99 ms', what: '99th percentile latency in ms', colour: '#8250df', values: (h) => h.p99Ms }
]

/** The chart columns of one pool's table. */
export interface PoolCharts {
  heads: string[]
  /** The chart cells of a target's row. */
  cells: (id: string) => string
}

/** A chart per series and target; p99 only where the history has it (metrics on). Null without history. */
export function poolCharts (history: HistoryReport | null, pool: string): PoolCharts | null {
  if (history === null) return null
  const targets = history.pools.find((p) => p.name === pool)?.targets ?? []
  const byId = new Map(targets.map((t) => [t.id, t]))
  const charts = CHARTS.filter((c) => c.key !== 'p99' || history.latency)
  const empty: TargetHistory = { id: '', requestsPerSecond: [], errorsPerSecond: [], p99Ms: [] }
  return {
    heads: charts.map((c) => c.head),
    cells (id: string): string {
      const h = byId.get(id) ?? empty
      return charts.map((c) => {
        const values = c.values(h) ?? []
        const latest = values.length === 0 ? null : values[values.length - 1]
        let peak: number | null = null
        for (const v of values) if (v !== null && (peak === null || v > peak)) peak = v
        const title = values.length === 0
          ? `${id}: ${c.what}: no sample yet`
          : `${id}: ${c.what} over the last ${duration(values.length * history.intervalMs)}: now ${figure(latest)}, peak ${figure(peak)}`
        return `<td class="chart" data-chart="${c.key}">${sparkline(values, history.samples, title, c.colour)}` +
          `<span class="now">${escape(figure(latest))}</span></td>`
      }).join('')
    }
  }
}

/** The line that says what the charts span. */
export function chartsLegend (history: HistoryReport | null): string {
  if (history === null) return ''
  return `<p class="legend">Charts: the last ${duration(history.samples * history.intervalMs)}, a sample every ${duration(history.intervalMs)}, ` +
    `newest on the right, each from 0 to its own peak${history.latency ? '' : '; p99 latency needs the metrics option'}.</p>`
}
