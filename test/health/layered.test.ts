import { test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { DemoUpstream } from '../helpers/demo-upstream'
import { Client, refusedUrl, sequence, startGateway } from '../helpers/gateway'
import { afterHealthEvents, LogLines } from '../helpers/health'
import type { CheckEvent, TransitionEvent } from '../../lib/health/monitor'
import type { HealthRegistry } from '../../lib/health/registry'
import type { StatusReport } from '../../lib/observability/status-report'

/** No second check of a healthy target can come within a test: only checks of failed ones repeat. */
const RARELY = 60_000

/** Every check and transition the registry reports, recorded from before the first check. */
class Seen {
  readonly checks: CheckEvent[] = []
  readonly transitions: TransitionEvent[] = []

  constructor (readonly health: HealthRegistry) {
    health.on('check', (event) => { this.checks.push(event) })
    health.on('transition', (event) => { this.transitions.push(event) })
  }

  checksOf (id: string, type?: 'http' | 'tcp'): CheckEvent[] {
    return this.checks.filter((c) => c.id === id && (type === undefined || c.type === type))
  }

  transitionsOf (id: string): TransitionEvent[] {
    return this.transitions.filter((c) => c.id === id)
  }

  async until (holds: () => boolean, what: string): Promise<void> {
    await afterHealthEvents(this.health, holds, what)
  }
}

/** A gateway forwarding `/*` to pool `main`, with the registry's events recorded from the start. */
async function gateway (pools: Parameters<typeof startGateway>[0]['pools'], lines?: LogLines): Promise<{ url: string, app: FastifyInstance, seen: Seen, close: () => Promise<void> }> {
  const seen: Seen[] = []
  const gw = await startGateway({ pools }, (app) => {
    seen.push(new Seen(app.lb.health))
    app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  }, lines === undefined ? {} : { logger: { level: 'info', stream: lines } })
  return { ...gw, seen: seen[0] }
}

test('[tcp, http]: a port that accepts connections but whose /health answers 503 is unhealthy; a target passing both is healthy', async (t) => {
  const sick = await new DemoUpstream('sick').start()
  const well = await new DemoUpstream('well').start()
  sick.mode = 'error'
  const lines = new LogLines()
  const gw = await gateway({
    main: {
      algorithm: 'round-robin',
      targets: [{ url: sick.url, id: 'sick' }, { url: well.url, id: 'well' }],
      healthCheck: [{ type: 'tcp', interval: RARELY }, { path: '/health', interval: RARELY, unhealthyInterval: 20 }]
    }
  }, lines)
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await sick.stop(); await well.stop() })
  const { seen } = gw
  const pool = gw.app.lb.pool('main')
  await seen.until(() => ['sick', 'well'].every((id) => seen.checksOf(id, 'tcp').length === 1 && seen.checksOf(id, 'http').length >= 1), 'both checks of both targets')

  t.match(seen.checksOf('sick', 'tcp')[0], { ok: true, check: 0 }, 'the port accepts connections')
  t.match(seen.checksOf('sick', 'http')[0], { ok: false, error: 'status 503', check: 1 })
  t.same(seen.transitionsOf('sick'), [{ id: 'sick', url: sick.url, from: 'healthy', to: 'unhealthy', reason: 'first check failed: status 503', check: 1, type: 'http' }],
    'one transition, naming the check that failed')
  const sickTarget = pool.get('sick')!
  t.equal(sickTarget.state, 'unhealthy')
  t.match(sickTarget.lastCheck, { ok: false, error: 'status 503', check: 1, type: 'http' }, 'lastCheck says which check failed')
  t.same([...gw.app.lb.health.monitors()].filter((m) => m.id === 'sick').map((m) => [m.check.type, m.index, m.healthy]), [['tcp', 0, true], ['http', 1, false]],
    'each check keeps its own state')
  t.equal(pool.get('well')!.state, 'healthy')
  t.match(pool.get('well')!.lastCheck, { ok: true })
  t.same(seen.transitionsOf('well'), [], 'a target passing both checks changes nothing')
  t.same(pool.eligible.map((x) => x.id), ['well'])
  t.same(await sequence(client, gw.url + '/x', 4), ['well', 'well', 'well', 'well'], 'no request reaches the target whose HTTP check fails')
  t.match(lines.matching('target is unhealthy'), [{ level: 40, target: 'sick', check: 1, type: 'http', reason: 'first check failed: status 503' }])

  const status = JSON.parse((await client.send(gw.url + '/lb/status')).text) as StatusReport
  const shown = status.pools[0].targets.find((x) => x.id === 'sick')!
  t.match(shown, { state: 'unhealthy', lastCheck: { ok: false, error: 'status 503', check: 1, type: 'http' } }, 'the status page says which check failed')

  sick.mode = 'ok'
  await seen.until(() => seen.transitionsOf('sick').length === 2, 'sick turning healthy')
  t.match(seen.transitionsOf('sick')[1], { from: 'unhealthy', to: 'healthy', reason: '2 consecutive passing checks', check: 1, type: 'http' })
  t.same(pool.eligible.map((x) => x.id), ['sick', 'well'])
  t.equal(seen.checksOf('sick', 'tcp').length, 1, 'the TCP check keeps its own interval while the HTTP one repeats')
})

test('a target failing every layer turns unhealthy once; the first failing check in the list explains it', async (t) => {
  const dead = await refusedUrl()
  const gw = await gateway({ main: { targets: [{ url: dead, id: 'dead' }], healthCheck: [{ type: 'tcp', interval: RARELY }, { interval: RARELY }] } })
  t.teardown(gw.close)
  const { seen } = gw
  await seen.until(() => seen.checksOf('dead').length === 2, 'both checks')
  t.same(seen.checksOf('dead').map((c) => c.error), ['connection refused', 'connection refused'])
  t.equal(seen.transitionsOf('dead').length, 1, 'a second failing layer is no second transition')
  t.match(gw.app.lb.pool('main').get('dead')!.lastCheck, { ok: false, error: 'connection refused', check: 0, type: 'tcp' })
})

test('unhealthyInterval: a failed target keeps being checked at it, a healthy one waits for its interval', async (t) => {
  const bad = await new DemoUpstream('bad').start()
  const good = await new DemoUpstream('good').start()
  bad.mode = 'error'
  const gw = await gateway({
    main: {
      targets: [{ url: bad.url, id: 'bad' }, { url: good.url, id: 'good' }],
      healthCheck: { interval: RARELY, unhealthyInterval: 50, unhealthyThreshold: 1 }
    }
  })
  t.teardown(async () => { await gw.close(); await bad.stop(); await good.stop() })
  const { seen } = gw
  await seen.until(() => seen.checksOf('good').length === 1 && seen.checksOf('bad').length >= 5, 'five checks of the failed target')
  t.ok(bad.healthHits >= 5, `the failed target is checked again and again (${bad.healthHits} checks)`)
  t.equal(good.healthHits, 1, 'the healthy target was checked once')
  t.same(seen.checksOf('bad').slice(0, 5).map((c) => c.error), Array(5).fill('status 503'))

  bad.mode = 'ok'
  await seen.until(() => seen.transitionsOf('bad').length === 2, 'bad turning healthy')
  t.same(seen.checksOf('bad').slice(-2).map((c) => c.ok), [true, true], 'recovered by healthyThreshold checks at unhealthyInterval')
  t.equal(good.healthHits, 1)
})

test('monitors are shared per check: [tcp, http] and the same http check alone cost one HTTP check per interval', async (t) => {
  const up = await new DemoUpstream('shared').start()
  up.mode = 'error'
  const http = { interval: RARELY, unhealthyInterval: RARELY }
  const gw = await gateway({
    main: { targets: [{ url: up.url, id: 'layered' }], healthCheck: [{ type: 'tcp', interval: RARELY }, http] },
    plain: { targets: [{ url: up.url, id: 'plain' }], healthCheck: http }
  })
  t.teardown(async () => { await gw.close(); await up.stop() })
  const { seen } = gw
  await seen.until(() => seen.checks.length === 2 && seen.transitions.length === 2, 'one check of each kind and both transitions')
  t.same(seen.checks.map((c) => [c.id, c.type, c.check]).sort(), [['layered', 'http', 1], ['layered', 'tcp', 0]],
    'a shared check is named after the list that registered it first')
  t.equal(up.healthHits, 1, 'one HTTP check serves both pools')
  t.same(seen.transitions.map((e) => [e.id, e.check, e.type]).sort(), [['layered', 1, 'http'], ['plain', 0, 'http']],
    'each list reports its own change, with its own index')
  t.match(gw.app.lb.pool('main').get('layered')!.lastCheck, { ok: false, check: 1 })
  t.match(gw.app.lb.pool('plain').get('plain')!.lastCheck, { ok: false, check: 0 })

  await gw.app.lb.pool('main').remove('layered')
  t.same([...gw.app.lb.health.monitors()].map((m) => m.check.type), ['http'], 'the TCP check stops with its last list; the shared one stays')
})
