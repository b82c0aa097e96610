import type { CaseInfo } from './cases'

/** The figures of one measurement. Latencies in µs, CPU in µs per request. */
export interface Figures {
  rps: number
  p50: number
  p99: number
  /** CPU time of the proxy (or of nginx, for the direct case) per answered request; null where /proc cannot tell. */
  cpu: number | null
}

/** One measurement of one case. */
export interface Round extends Figures {
  round: number
  requests: number
  errors: number
  /** 1-minute load average when the measurement ended. */
  load: number
  /** The baseline's figures around this measurement (the mean of the one just before and the one just after). */
  reference?: Figures
}

export interface Spread { median: number, min: number, max: number }

type Figure = keyof Figures
const FIGURES: Figure[] = ['rps', 'p50', 'p99', 'cpu']

/** The mean of two baseline measurements, the reference of the case measured between them. */
export function between (a: Figures, b: Figures): Figures {
  return { rps: (a.rps + b.rps) / 2, p50: (a.p50 + b.p50) / 2, p99: (a.p99 + b.p99) / 2, cpu: a.cpu === null || b.cpu === null ? null : (a.cpu + b.cpu) / 2 }
}

export interface CaseResult extends CaseInfo {
  rounds: Round[]
  figures: Record<Figure, Spread | null>
  /** Each figure divided by the baseline's measured around it, over the rounds. */
  ratios: Record<Figure, Spread | null>
}

function spread (values: Array<number | null>): Spread | null {
  if (values.length === 0 || values.some((v) => v === null || !Number.isFinite(v))) return null
  const sorted = (values as number[]).slice().sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  return { median, min: sorted[0], max: sorted[sorted.length - 1] }
}

/** Median and min-max of each figure, and of its ratio to the reference (1 for measurements without one: the baseline's own). */
export function summarize (info: CaseInfo, rounds: Round[]): CaseResult {
  const figures = {} as Record<Figure, Spread | null>
  const ratios = {} as Record<Figure, Spread | null>
  for (const f of FIGURES) {
    figures[f] = spread(rounds.map((r) => r[f]))
    ratios[f] = spread(rounds.map((r) => {
      if (r.reference === undefined) return 1
      const base = r.reference[f]
      const value = r[f]
      return base === null || value === null || base === 0 ? null : value / base
    }))
  }
  return { ...info, rounds, figures, ratios }
}

function fmt (value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function cell (s: Spread | null, digits: number, scale = 1): string {
  if (s === null) return 'n/a'
  return `${fmt(s.median / scale, digits)} (${fmt(s.min / scale, digits)}–${fmt(s.max / scale, digits)})`
}

function ratio (s: Spread | null): string {
  if (s === null) return 'n/a'
  return `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})`
}

/** The results as a markdown table: median of the rounds, min–max in parentheses. */
export function markdown (results: CaseResult[]): string {
  const lines = [
    '| case | req/s | × baseline | p50 ms | × baseline | p99 ms | × baseline | CPU µs/req | × baseline | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const r of results) {
    const errors = r.rounds.reduce((sum, x) => sum + x.errors, 0)
    lines.push(`| ${r.label} | ${cell(r.figures.rps, 0)} | ${ratio(r.ratios.rps)} | ${cell(r.figures.p50, 2, 1000)} | ${ratio(r.ratios.p50)} | ` +
      `${cell(r.figures.p99, 2, 1000)} | ${ratio(r.ratios.p99)} | ${cell(r.figures.cpu, 1)} | ${ratio(r.ratios.cpu)} | ${errors} |`)
  }
  return lines.join('\n') + '\n'
}
