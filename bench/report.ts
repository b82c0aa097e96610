import type { CaseInfo } from './cases'

/** One measurement of one case. Latencies in µs, CPU in µs per request. */
export interface Round {
  round: number
  rps: number
  p50: number
  p99: number
  /** CPU time of the proxy (or of nginx, for the direct case) per answered request; null where /proc cannot tell. */
  cpu: number | null
  requests: number
  errors: number
  /** 1-minute load average when the measurement ended. */
  load: number
}

export interface Spread { median: number, min: number, max: number }

type Figure = 'rps' | 'p50' | 'p99' | 'cpu'
const FIGURES: Figure[] = ['rps', 'p50', 'p99', 'cpu']

export interface CaseResult extends CaseInfo {
  rounds: Round[]
  figures: Record<Figure, Spread | null>
  /** Each figure divided by the baseline's of the same round, over the rounds. */
  ratios: Record<Figure, Spread | null>
}

function spread (values: Array<number | null>): Spread | null {
  if (values.length === 0 || values.some((v) => v === null || !Number.isFinite(v))) return null
  const sorted = (values as number[]).slice().sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  return { median, min: sorted[0], max: sorted[sorted.length - 1] }
}

export function summarize (info: CaseInfo, rounds: Round[], baseline: Round[]): CaseResult {
  const figures = {} as Record<Figure, Spread | null>
  const ratios = {} as Record<Figure, Spread | null>
  for (const f of FIGURES) {
    figures[f] = spread(rounds.map((r) => r[f]))
    ratios[f] = spread(rounds.map((r) => {
      const base = baseline.find((b) => b.round === r.round)?.[f]
      const value = r[f]
      return base === undefined || base === null || value === null || base === 0 ? null : value / base
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
