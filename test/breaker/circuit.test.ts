import { test, type Test } from 'tap'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import { Client, startGateway, until, type Answer, type Gateway } from '../helpers/gateway'
import { LogLines } from '../helpers/health'
import { sampleValue } from '../helpers/prom-text'
import type { CircuitBreakerOptions } from '../../lib/breaker/options'
import type { RetryOptions } from '../../lib/options/resolve'
import type { CircuitEvent } from '../../lib/breaker/breaker'
import type { Pool } from '../../lib/pool/pool'
import type { StatusReport } from '../../lib/observability/status-report'

interface Setup {
  ups: DemoUpstream[]
  gw: Gateway
  client: Client
  pool: Pool
  lines: LogLines
  /** Resolves with the n-th 'circuit' event of pool `main` (1-based), at once if it came already. */
  event: (n: number) => Promise<CircuitEvent>
  events: CircuitEvent[]
  get: () => Promise<Answer>
}

/** Upstreams behind a gateway whose pool `main` (round robin, no retries unless told) has the circuit breaker given. */
async function setUp (t: Test, ids: string[], circuitBreaker: CircuitBreakerOptions, retry: RetryOptions | false = false): Promise<Setup> {
  const ups = await startUpstreams(ids)
  const lines = new LogLines()
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', targets: ups.map((u) => ({ url: u.url, id: u.id })), retry, circuitBreaker } }
  }, undefined, { logger: { level: 'info', stream: lines } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const events: CircuitEvent[] = []
  const waiting: Array<{ n: number, resolve: (e: CircuitEvent) => void }> = []
  pool.on('circuit', (e: CircuitEvent) => {
    events.push(e)
    for (const w of waiting.filter((w) => events.length >= w.n)) {
      waiting.splice(waiting.indexOf(w), 1)
      w.resolve(events[w.n - 1])
    }
  })
  const event = async (n: number): Promise<CircuitEvent> => {
    if (events.length >= n) return events[n - 1]
    return new Promise((resolve) => waiting.push({ n, resolve }))
  }
  return { ups, gw, client, pool, lines, event, events, get: async () => client.send(gw.url + '/x') }
}

function hits (ups: DemoUpstream[]): number {
  return ups.reduce((n, u) => n + u.hits, 0)
}

/** Sends one GET per letter, sequentially: every upstream answers 500 for x, 200 for o. */
async function play (s: Setup, outcomes: string): Promise<number[]> {
  const statuses: number[] = []
  for (const o of outcomes) {
    for (const u of s.ups) u.status = o === 'x' ? 500 : null
    statuses.push((await s.get()).status)
  }
  for (const u of s.ups) u.status = null
  return statuses
}

test('60% failing trips it after minRequests; while open no request reaches an upstream', async (t) => {
  const s = await setUp(t, ['a', 'b'], { failureRatio: 0.5, minRequests: 10, window: 60_000, openFor: 60_000 })
  t.same(await play(s, 'xoxox' + 'xoxo'), [500, 200, 500, 200, 500, 500, 200, 500, 200])
  t.equal(s.pool.breaker!.state, 'closed', '5 of 9 failed, but 9 calls are fewer than minRequests')
  await play(s, 'x')
  t.same(await s.event(1), { from: 'closed', to: 'open', failureRatio: 0.6, slowCallRatio: 0, calls: 10 })
  const before = hits(s.ups)
  for (let i = 0; i < 5; i++) {
    const res = await s.get()
    t.equal(res.status, 503)
    t.equal(res.headers['retry-after'], '60', 'seconds until half-open')
    const body = JSON.parse(res.text) as Record<string, unknown>
    t.same(body, { statusCode: 503, code: 'FST_LB_CIRCUIT_OPEN', error: 'Service Unavailable', message: 'The circuit breaker of pool "main" is open' })
    t.notOk(s.ups.some((u) => res.text.includes(String(u.port))), 'no upstream address')
  }
  t.equal(hits(s.ups), before, 'no upstream was contacted')
  t.equal(s.pool.get('a')!.requests + s.pool.get('b')!.requests, 10, 'nor picked')

  const opened = s.lines.matching('circuit breaker opened')
  t.equal(opened.length, 1)
  t.match(opened[0], { level: 40, pool: 'main', from: 'closed', to: 'open', failureRatio: 0.6, slowCallRatio: 0, calls: 10 })

  const metrics = (await s.client.send(s.gw.url + '/metrics')).text
  t.equal(sampleValue(metrics, 'lb_circuit_state', { pool: 'main' }), 2, 'the gauge says open')
  t.same(['closed', 'half-open', 'open'].map((to) => sampleValue(metrics, 'lb_circuit_transitions_total', { pool: 'main', to })), [0, 0, 1])

  const status = JSON.parse((await s.client.send(s.gw.url + '/lb/status')).text) as StatusReport
  const circuit = status.pools[0].circuit!
  t.match(circuit, { state: 'open', failureRatio: 0.6, slowCallRatio: 0, calls: 10, rejected: 5 })
  t.ok(circuit.openedAt! <= Date.now() && circuit.halfOpenAt! - circuit.openedAt! >= 59_000, 'opened, and half-open about openFor later')
  const html = (await s.client.send(s.gw.url + '/lb/status?format=html')).text
  t.match(html, /data-circuit="open">Circuit breaker: <span class="badge">open<\/span> · 60% failed, 0% slow of the calls that opened it \(10 calls\)/)
})

test('after openFor: a failing trial opens it again, trials of a well upstream close it; extra requests are refused meanwhile', async (t) => {
  const s = await setUp(t, ['a'], { failureRatio: 0.5, minRequests: 4, window: 60_000, openFor: 200, halfOpenRequests: 2 })
  const up = s.ups[0]
  await play(s, 'xxxx')
  t.equal((await s.event(1)).to, 'open')
  t.same(await s.event(2), { from: 'open', to: 'half-open', failureRatio: null, slowCallRatio: null, calls: 0 })
  t.same(await play(s, 'xx'), [500, 500], 'both trials reach the failing upstream')
  t.same(await s.event(3), { from: 'half-open', to: 'open', failureRatio: 1, slowCallRatio: 0, calls: 2 })

  await s.event(4)
  up.mode = 'slow'
  up.delayMs = 300
  const before = up.hits
  const trials = [s.get(), s.get()]
  await until(() => up.active === 2, 5000, 'both trials at the upstream')
  const extra = await s.get()
  t.equal(extra.status, 503, 'no third trial')
  t.equal(JSON.parse(extra.text).code, 'FST_LB_CIRCUIT_OPEN')
  t.equal(extra.headers['retry-after'], '1')
  t.same((await Promise.all(trials)).map((r) => r.status), [200, 200])
  t.equal(up.hits, before + 2)
  t.same(await s.event(5), { from: 'half-open', to: 'closed', failureRatio: 0, slowCallRatio: 0, calls: 2 })
  up.mode = 'ok'
  t.equal((await s.get()).status, 200, 'closed: requests flow')

  t.same(s.events.map((e) => e.to), ['open', 'half-open', 'open', 'half-open', 'closed'])
  t.same(s.lines.matching('fastify-lb: circuit breaker').map((l) => [l.level, l.msg]), [
    [40, 'fastify-lb: circuit breaker opened'], [40, 'fastify-lb: circuit breaker opened'], [30, 'fastify-lb: circuit breaker closed']
  ])
  const metrics = (await s.client.send(s.gw.url + '/metrics')).text
  t.equal(sampleValue(metrics, 'lb_circuit_state', { pool: 'main' }), 0)
  t.same(['closed', 'half-open', 'open'].map((to) => sampleValue(metrics, 'lb_circuit_transitions_total', { pool: 'main', to })), [1, 2, 2])
  const status = JSON.parse((await s.client.send(s.gw.url + '/lb/status')).text) as StatusReport
  t.match(status.pools[0].circuit, { state: 'closed', calls: 1, failureRatio: 0, rejected: 1, halfOpenAt: null })
})

test('slow calls trip it through slowCallRatio', async (t) => {
  const s = await setUp(t, ['a'], { failureRatio: 1, slowCallMs: 50, slowCallRatio: 0.5, minRequests: 4, openFor: 60_000 })
  s.ups[0].mode = 'slow'
  s.ups[0].delayMs = 100
  t.same(await play(s, 'oooo'), [200, 200, 200, 200], 'slow but answered')
  t.same(await s.event(1), { from: 'closed', to: 'open', failureRatio: 0, slowCallRatio: 1, calls: 4 })
  t.equal((await s.get()).status, 503)
})

test('clients that leave do not count', async (t) => {
  const s = await setUp(t, ['a'], { failureRatio: 0.5, minRequests: 2, openFor: 60_000 })
  const up = s.ups[0]
  up.mode = 'hang'
  const aborts = [new AbortController(), new AbortController(), new AbortController()]
  const left = aborts.map(async (a) => s.client.send(s.gw.url + '/x', { signal: a.signal }).catch(() => null))
  await until(() => up.active === 3, 5000, 'three requests at the upstream')
  for (const a of aborts) a.abort()
  await Promise.all(left)
  const target = s.pool.get('a')!
  await until(() => target.aborted === 3, 5000, 'the gateway seeing the clients leave')
  t.match(s.pool.breaker!.snapshot(), { state: 'closed', calls: 0 })
  up.mode = 'ok'
  await play(s, 'x')
  t.equal(s.pool.breaker!.state, 'closed', 'one counted call is fewer than minRequests')
  await play(s, 'o')
  t.same(await s.event(1), { from: 'closed', to: 'open', failureRatio: 0.5, slowCallRatio: 0, calls: 2 })
})

test('every try counts: a request that failed on one target and was retried on another counts twice', async (t) => {
  const s = await setUp(t, ['a', 'b'], { minRequests: 1000 }, {})
  s.ups[0].status = 503
  for (let i = 0; i < 4; i++) t.equal((await s.get()).status, 200, 'the retry answers')
  const snap = s.pool.breaker!.snapshot()
  t.ok(s.pool.retries.attempted > 0)
  t.equal(snap.calls, 4 + s.pool.retries.attempted)
  t.equal(Math.round(snap.failureRatio * snap.calls), s.pool.get('a')!.failures)
})

test('without the option the pool has no breaker, no gauge series and no circuit on the status page', async (t) => {
  const ups = await startUpstreams(['a'])
  const gw = await startGateway({ pools: { main: { targets: [ups[0].url] } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  t.equal(gw.app.lb.pool('main').breaker, null)
  const metrics = (await client.send(gw.url + '/metrics')).text
  t.equal(sampleValue(metrics, 'lb_circuit_state', { pool: 'main' }), undefined)
  t.notMatch((await client.send(gw.url + '/lb/status?format=html')).text, /data-circuit/)
})
