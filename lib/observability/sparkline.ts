import { escape } from './html-escape'

const WIDTH = 96
const HEIGHT = 24
/** Room for the stroke at the edges. */
const PAD = 2

function coordinate (value: number): string {
  return String(Math.round(value * 10) / 10)
}

/**
 * A small line chart as inline SVG: no script, no style attribute, nothing
 * fetched, so the page keeps working under a strict Content-Security-Policy.
 * Values are oldest first; the newest sits at the right edge and each step to
 * the left is one sample of `capacity`, so a short series covers only the
 * recent part of the width. The scale runs from 0 to the largest value. A
 * null (an interval without an answer) breaks the line: each run of values is
 * one polyline with one point per value, and a lone value gets a dot as well.
 * `title` is plain text, the chart's accessible name and tooltip. Colours are
 * presentation attributes, which no style policy blocks.
 */
export function sparkline (values: ReadonlyArray<number | null>, capacity: number, title: string, colour: string): string {
  let max = 0
  for (const v of values) if (v !== null && v > max) max = v
  const step = (WIDTH - 2 * PAD) / Math.max(capacity - 1, 1)
  const first = WIDTH - PAD - (values.length - 1) * step
  const y = (v: number): string => coordinate(HEIGHT - PAD - (max === 0 ? 0 : v / max) * (HEIGHT - 2 * PAD))
  let lines = ''
  let run: string[] = []
  const close = (): void => {
    if (run.length === 1) {
      const [cx, cy] = run[0].split(',')
      lines += `<circle cx="${cx}" cy="${cy}" r="1.5" fill="${colour}" stroke="none"/>`
    }
    if (run.length > 0) lines += `<polyline points="${run.join(' ')}"/>`
    run = []
  }
  values.forEach((v, i) => {
    if (v === null) close()
    else run.push(`${coordinate(first + i * step)},${y(v)}`)
  })
  close()
  return `<svg class="spark" role="img" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" data-samples="${values.length}" ` +
    `fill="none" stroke="${colour}" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round">` +
    `<title>${escape(title)}</title><line x1="0" y1="${HEIGHT - 0.5}" x2="${WIDTH}" y2="${HEIGHT - 0.5}" stroke="#d1d9e0" stroke-width="1"/>${lines}</svg>`
}
