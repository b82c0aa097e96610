import { test, type Test } from 'tap'
import { sparkline } from '../../../lib/observability/sparkline'

/** The points of every polyline of an SVG chart, as [x, y] pairs. */
function lines (svg: string): Array<Array<[number, number]>> {
  return [...svg.matchAll(/<polyline points="([^"]*)"/g)].map((m) => m[1].split(' ').map((p) => p.split(',').map(Number) as [number, number]))
}

function wellFormed (t: Test, svg: string): void {
  t.match(svg, /^<svg [^>]*role="img"[^>]*><title>[^<]*<\/title>.*<\/svg>$/, 'one svg with a title first')
  t.notMatch(svg, /NaN|undefined|Infinity|null/, 'no broken number')
  t.notMatch(svg, /style=|<script|href/, 'no style attribute, script or link')
}

test('a point per sample, the newest at the right edge, the peak at the top and 0 at the bottom', async (t) => {
  const values = [0, 5, 10, 2.5]
  const svg = sparkline(values, 60, 'a: requests per second', '#0969da')
  wellFormed(t, svg)
  const [line, ...more] = lines(svg)
  t.equal(more.length, 0, 'one line')
  t.equal(line.length, values.length, 'as many points as samples')
  const xs = line.map(([x]) => x)
  t.same(xs, [...xs].sort((a, b) => a - b), 'oldest on the left')
  t.equal(xs[xs.length - 1], 94, 'the newest at the right edge')
  const step = xs[1] - xs[0]
  t.ok(Math.abs(step - 92 / 59) < 0.11, 'a step is one sample of the window')
  t.same(line.map(([, y]) => y), [22, 12, 2, 17], 'scaled from 0 (bottom) to the peak (top)')
  t.match(svg, /data-samples="4"/)
})

test('a full window spans the whole width', async (t) => {
  const values = Array.from({ length: 60 }, (_v, i) => i)
  const line = lines(sparkline(values, 60, 'x', '#000'))[0]
  t.equal(line.length, 60)
  t.equal(line[0][0], 2)
  t.equal(line[59][0], 94)
})

test('an empty series draws an axis and a title, and no line', async (t) => {
  const svg = sparkline([], 60, 'a: no sample yet', '#000')
  wellFormed(t, svg)
  t.same(lines(svg), [])
  t.notMatch(svg, /<circle/)
  t.match(svg, /<title>a: no sample yet<\/title>/)
})

test('a series of zeros lies flat on the bottom', async (t) => {
  const svg = sparkline([0, 0, 0], 10, 'x', '#000')
  wellFormed(t, svg)
  t.same(lines(svg)[0].map(([, y]) => y), [22, 22, 22])
})

test('nulls break the line: a polyline per run, points only for values, a dot for a lone one', async (t) => {
  const values = [1, 2, null, null, 3, null, 4, 5, 6]
  const svg = sparkline(values, 9, 'p99', '#000')
  wellFormed(t, svg)
  const runs = lines(svg)
  t.same(runs.map((r) => r.length), [2, 1, 3])
  t.equal(runs.flat().length, values.filter((v) => v !== null).length, 'points equal the samples that have a value')
  t.equal(svg.match(/<circle /g)?.length, 1, 'the lone value is visible')
  t.same(lines(sparkline([null, null], 9, 'p99', '#000')), [], 'only nulls: no line')
})

test('the title is escaped text', async (t) => {
  const svg = sparkline([1], 5, '<b>"a" & b</b>', '#000')
  t.match(svg, /<title>&lt;b&gt;&quot;a&quot; &amp; b&lt;\/b&gt;<\/title>/)
})
