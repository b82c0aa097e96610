import { test } from 'tap'
import type { HistoryReport, TargetHistory } from '../../../lib/observability/status-report'
import type { LbOptions } from '../../../lib/options/resolve'
import { startUpstreams } from '../../helpers/demo-upstream'
import { eventually } from '../../helpers/external'
import { sequence, startGateway } from '../../helpers/gateway'
import { observed, type Observed } from '../metrics/fixtures'
import { timersFrom } from './timers'

async function historyOf ({ client, gw }: Pick<Observed, 'client' | 'gw'>): Promise<HistoryReport> {
  const res = await client.send(gw.url + '/lb/status')
  if (res.status !== 200) throw new Error(`/lb/status answered ${res.status}`)
  const history = (JSON.parse(res.text) as { history: HistoryReport | null }).history
  if (history === null) throw new Error('no history')
  return history
}

function target (h: HistoryReport, id: string, pool = 'main'): TargetHistory | undefined {
  return h.pools.find((p) => p.name === pool)?.targets.find((x) => x.id === id)
}

/**
 * How many events a series of rates adds up to: each rate times the time its
 * interval lasted, read from the sample times (a series ends at the latest).
 */
function total (h: HistoryReport, rates: number[]): number {
  const at = h.sampledAt
  const offset = at.length - rates.length
  let sum = 0
  rates.forEach((rate, i) => {
    const j = offset + i
    sum += rate * (j === 0 ? h.intervalMs : at[j] - at[j - 1]) / 1000
  })
  return sum
}

/** Samples taken after epoch ms `from`: strictly after, or also in the same millisecond. */
function samplesAfter (h: HistoryReport, from: number, strict: boolean): number {
  return h.sampledAt.filter((x) => strict ? x > from : x >= from).length
}

const FAST: LbOptions = { status: { history: { interval: 100, samples: 100 } } }

test('the JSON history shows each target\'s requests, errors and p99 per interval, and an idle interval as 0 and no p99', async (t) => {
  const o = await observed(t, ['a', 'b'], { retry: false }, FAST)
  const [a, b] = o.ups
  a.mode = 'slow'
  a.delayMs = 150
  b.mode = 'error'
  // Requests go out once sampling has begun, so every one falls in an interval whose length the samples tell.
  await eventually(async () => await historyOf(o), (h) => h.sampledAt.length >= 1, 10_000, 'a first sample')
  t.same(await sequence(o.client, o.gw.url + '/x', 10), ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'])

  const h = await eventually(async () => await historyOf(o), (h) => {
    const [ha, hb] = [target(h, 'a'), target(h, 'b')]
    return ha !== undefined && hb !== undefined && Math.round(total(h, ha.requestsPerSecond)) === 5 &&
      Math.round(total(h, hb.requestsPerSecond)) === 5 && Math.round(total(h, hb.errorsPerSecond)) === 5
  }, 10_000, 'the ten requests in the history')
  t.same({ intervalMs: h.intervalMs, samples: h.samples, latency: h.latency }, { intervalMs: 100, samples: 100, latency: true })
  t.same(h.sampledAt, [...h.sampledAt].sort((x, y) => x - y), 'sample times in order')
  const ha = target(h, 'a') as TargetHistory
  const hb = target(h, 'b') as TargetHistory
  t.ok(Math.abs(total(h, ha.requestsPerSecond) - 5) < 0.5, 'a: five requests')
  t.ok(Math.abs(total(h, hb.errorsPerSecond) - 5) < 0.5, 'b: five errors')
  t.ok(ha.errorsPerSecond.every((x) => x === 0), 'a: no error')
  t.equal(ha.requestsPerSecond.length, h.sampledAt.length, 'a series per sample')
  const p99a = (ha.p99Ms ?? []).filter((x): x is number => x !== null)
  t.ok(p99a.length > 0, 'intervals with answers of a have a p99')
  t.ok(p99a.every((x) => x >= 100), `a answers after 150 ms: its p99 is in the bucket above 100 ms (${p99a.join(', ')})`)
  t.ok((hb.p99Ms ?? []).some((x) => x !== null), 'a 500 is an answer: b has a p99 too')

  // Nothing more is sent: the next two samples see an idle interval.
  const seen = h.sampledAt.length
  const idle = await eventually(async () => await historyOf(o), (h) => h.sampledAt.length >= seen + 2, 10_000, 'two more samples')
  const last = target(idle, 'a') as TargetHistory
  t.equal(last.requestsPerSecond.at(-1), 0, 'no request in the last interval: 0 per second')
  t.equal(last.errorsPerSecond.at(-1), 0)
  t.equal(last.p99Ms?.at(-1), null, 'no answer in the last interval: no p99, rather than 0')
})

test('a target that joins starts with an empty history; one that leaves drops it, and coming back starts afresh', async (t) => {
  const o = await observed(t, ['a'], {}, FAST)
  const [c] = await startUpstreams(['c'])
  t.teardown(async () => { await c.stop() })
  const pool = o.gw.app.lb.pool('main')
  await eventually(async () => await historyOf(o), (h) => (target(h, 'a')?.requestsPerSecond.length ?? 0) >= 3, 10_000, 'three samples of a')

  const addedAt = Date.now()
  pool.add({ url: c.url, id: 'c' })
  const joined = await eventually(async () => await historyOf(o), (h) => (target(h, 'c')?.requestsPerSecond.length ?? 0) >= 2, 10_000, 'two samples of c')
  const hc = target(joined, 'c') as TargetHistory
  t.ok(hc.requestsPerSecond.length >= samplesAfter(joined, addedAt, true) && hc.requestsPerSecond.length <= samplesAfter(joined, addedAt, false),
    'c has a value for each sample since it joined, and none before')
  t.ok(hc.requestsPerSecond.length < (target(joined, 'a') as TargetHistory).requestsPerSecond.length, 'a goes further back')

  await pool.remove('c')
  const left = await historyOf(o)
  t.same(left.pools[0].targets.map((x) => x.id), ['a'], 'c left, and its history with it')

  const backAt = Date.now()
  pool.add({ url: c.url, id: 'c' })
  t.same(await sequence(o.client, o.gw.url + '/x', 4), ['a', 'c', 'a', 'c'])
  const back = await eventually(async () => await historyOf(o), (h) => {
    const x = target(h, 'c')
    return x !== undefined && Math.round(total(h, x.requestsPerSecond)) === 2
  }, 10_000, 'the requests to c in its new history')
  const again = target(back, 'c') as TargetHistory
  t.ok(again.requestsPerSecond.length <= samplesAfter(back, backAt, false), 'nothing from before it left')
  t.ok(Math.abs(total(back, again.requestsPerSecond) - 2) < 0.5, 'c counts its requests from 0')
})

test('the history is bounded: once full, each new sample replaces the oldest', async (t) => {
  const o = await observed(t, ['a'], {}, { status: { history: { interval: 50, samples: 5 } } })
  const full = await eventually(async () => await historyOf(o), (h) => h.sampledAt.length === 5, 10_000, 'five samples')
  const newest = full.sampledAt[4]
  // Five more samples replace all five.
  const later = await eventually(async () => await historyOf(o), (h) => h.sampledAt[0] > newest, 10_000, 'five more samples')
  t.equal(later.sampledAt.length, 5)
  t.same(later.pools[0].targets.map((x) => [x.requestsPerSecond.length, x.errorsPerSecond.length, x.p99Ms?.length]), [[5, 5, 5]])
})

test('without metrics the history has rates and no p99, and the page says why', async (t) => {
  const o = await observed(t, ['a'], {}, { metrics: false, ...FAST })
  const h = await eventually(async () => await historyOf(o), (h) => h.sampledAt.length >= 1, 10_000, 'a first sample')
  t.equal(h.latency, false)
  t.same(Object.keys(h.pools[0].targets[0]), ['id', 'requestsPerSecond', 'errorsPerSecond'])
  const html = (await o.client.send(o.gw.url + '/lb/status?format=html')).text
  t.same([...html.matchAll(/data-chart="(\w+)"/g)].map((m) => m[1]), ['requests', 'errors'])
  t.match(html, /p99 latency needs the metrics option/)
})

test('one sampling timer runs from ready to close, and none without the status page or with history: false', async (t) => {
  const timers = timersFrom(t, 'lib/observability/history')
  const [a] = await startUpstreams(['a'])
  t.teardown(async () => { await a.stop() })
  const pools = { main: { targets: [{ url: a.url, id: 'a' }] } }
  for (const [what, options, running] of [
    ['by default', {}, 1],
    ['status: false', { status: false }, 0],
    ['history: false', { status: { history: false } }, 0]
  ] as const) {
    timers.created = 0
    const gw = await startGateway({ pools, ...options })
    t.equal(timers.pending.size, running, `${what}: ${running} timer after ready`)
    t.equal(timers.created, running, `${what}: ${running} created`)
    if (what === 'history: false') {
      const res = await gw.app.inject('/lb/status')
      t.equal(res.json<{ history: unknown }>().history, null, 'the JSON says there is no history')
    }
    await gw.close()
    t.equal(timers.pending.size, 0, `${what}: none left after close`)
  }
})
