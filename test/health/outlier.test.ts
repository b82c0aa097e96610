import { test } from 'tap'
import { startUpstreams } from '../helpers/demo-upstream'
import { ejectionLimit, ejectionMs } from '../../lib/health/outlier'
import type { Pool } from '../../lib/pool/pool'
import type { Target } from '../../lib/pool/target'
import { Client, count, refusedUrl, sequence, startGateway, until } from '../helpers/gateway'
import { HealthLog, LogLines } from '../helpers/health'

test('ejection length grows with each ejection up to the maximum', async (t) => {
  t.same([1, 2, 3, 10, 11].map((n) => ejectionMs(n, 30_000, 300_000)), [30_000, 60_000, 90_000, 300_000, 300_000])
})

test('maxEjectionPercent rounds down: 1 of 2 or 3 at 0.5, none of 3 below 1/3', async (t) => {
  const cases: Array<[number, number]> = [[2, 0.5], [3, 0.5], [3, 0.34], [3, 0.33], [4, 0.5], [10, 0.3], [10, 0.1], [3, 1], [1, 0.5]]
  t.same(cases.map(([n, p]) => ejectionLimit(n, p)), [1, 1, 1, 0, 2, 3, 1, 3, 0])
})

interface Ejection { id: string, ms: number }

function recordEjections (pool: Pool): { ejections: Ejection[], returns: string[] } {
  const ejections: Ejection[] = []
  const returns: string[] = []
  pool.on('eject', (target: Target, until: number) => { ejections.push({ id: target.id, ms: until - Date.now() }) })
  pool.on('uneject', (target: Target) => { returns.push(target.id) })
  return { ejections, returns }
}

test('consecutive 5xx eject a target for base x ejections, capped, and a quiet spell forgives', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  ups[2].status = 500
  // The base is three times what re-ejecting takes on a loaded machine (about nine requests), so
  // no base period passes between a return and the next ejection and forgives one by accident.
  const base = 300
  const lines = new LogLines()
  const gw = await startGateway({
    pools: {
      main: {
        algorithm: 'round-robin',
        targets: ups.map((u) => ({ url: u.url, id: u.id })),
        outlierDetection: { consecutiveFailures: 3, baseEjectionTime: base, maxEjectionTime: 700 }
      }
    }
  }, undefined, { logger: { level: 'warn', stream: lines } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const seen = recordEjections(pool)
  /** Sends requests (a bounded number) until done() holds. */
  const sendUntil = async (done: () => boolean): Promise<void> => {
    for (let i = 0; i < 50 && !done(); i++) await client.send(gw.url + '/x')
    t.ok(done(), 'reached within 50 requests')
  }

  const served = await sequence(client, gw.url + '/x', 12)
  t.same(served, ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'a'], 'the third failure in a row ejects c')
  t.equal(pool.get('c')!.state, 'ejected')
  t.same(pool.eligible.map((x) => x.id), ['a', 'b'])

  // Each ejection follows the last one's end at once: 1, 2, then 3 x base capped at 700.
  for (let n = 1; n <= 3; n++) {
    await until(() => seen.returns.length >= n, 5000, `return ${n}`)
    t.equal(pool.get('c')!.consecutiveFailures, 0, 'the count starts afresh after an ejection')
    await sendUntil(() => seen.ejections.length > n)
  }
  const ejected = (): unknown[] => lines.matching('target ejected').map((l) => l.ejectedMs)
  t.same(ejected(), [base, 2 * base, 700, 700], 'each ejection lasts base x ejections, at most the maximum')
  t.ok(seen.ejections.every((e) => e.ms <= 700), "'eject' tells until when")

  // Each base period without an ejection forgives one: after four or more, the next is as short as the first.
  await until(() => seen.returns.length >= 4, 5000, 'return 4')
  await new Promise((resolve) => setTimeout(resolve, 5 * base))
  await sendUntil(() => seen.ejections.length > 4)
  t.equal(ejected()[4], base, 'after a quiet spell the ejection is short again')
})

test('a success resets the count; uncounted failures neither count nor reset', async (t) => {
  const ups = await startUpstreams(['a'])
  const gw = await startGateway({
    pools: { main: { targets: [{ url: ups[0].url, id: 'a' }], timeout: 100, outlierDetection: { consecutiveFailures: 3, failOn: ['5xx'], maxEjectionPercent: 1 } } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  const target = gw.app.lb.pool('main').get('a')!
  const fail = async (n: number): Promise<void> => {
    ups[0].status = 500
    await sequence(client, gw.url + '/x', n)
    ups[0].status = null
  }
  await fail(2)
  t.equal(target.consecutiveFailures, 2)
  await sequence(client, gw.url + '/x', 1)
  t.equal(target.consecutiveFailures, 0, 'one success resets')
  await fail(2)
  t.equal(target.ejectedUntil, 0, 'two failures do not eject')
  ups[0].mode = 'hang'
  t.equal((await client.send(gw.url + '/x')).status, 504)
  ups[0].mode = 'ok'
  t.equal(target.consecutiveFailures, 2, 'a timeout, not counted here, leaves the count alone')
  await fail(1)
  t.not(target.ejectedUntil, 0, 'the third failure in a row ejects (a single target at maxEjectionPercent 1)')
})

test('connect failures eject too, while clients see no error', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const dead = await refusedUrl()
  const gw = await startGateway({
    pools: {
      main: {
        algorithm: 'round-robin',
        targets: [{ url: dead, id: 'dead' }, ...ups.map((u) => ({ url: u.url, id: u.id }))],
        outlierDetection: { consecutiveFailures: 2 }
      }
    }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const served = await sequence(client, gw.url + '/x', 12)
  t.same(Object.keys(count(served)).sort(), ['a', 'b'], 'every request answered')
  t.equal(pool.get('dead')!.requests, 2, 'tried twice, then ejected')
  t.equal(pool.get('dead')!.state, 'ejected')
})

test('never more than maxEjectionPercent of a pool: one of two, one of three at 0.5', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c', 'd', 'e'])
  for (const u of ups) u.status = 500
  const lines = new LogLines()
  const outlier = { consecutiveFailures: 1 }
  const gw = await startGateway({
    pools: {
      two: { targets: ups.slice(0, 2).map((u) => u.url), outlierDetection: outlier },
      three: { targets: ups.slice(2).map((u) => u.url), outlierDetection: outlier },
      none: { targets: ups.slice(2).map((u) => u.url), outlierDetection: { ...outlier, maxEjectionPercent: 0.33 } }
    }
  }, (app) => {
    for (const name of ['two', 'three', 'none']) app.get(`/${name}`, { config: { upstream: name } }, app.lb.forward)
  }, { logger: { level: 'warn', stream: lines } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  for (const name of ['two', 'three', 'none']) {
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) statuses.push((await client.send(`${gw.url}/${name}`)).status)
    t.same(statuses, Array(12).fill(500), `${name}: every answer passed through`)
  }
  const ejected = (name: string): number => gw.app.lb.pool(name).targets.filter((x) => x.ejectedUntil !== 0).length
  t.same([ejected('two'), ejected('three'), ejected('none')], [1, 1, 0])
  const warnings = lines.matching('can eject no target')
  t.same(warnings.map((l) => l.pool), ['none'], 'a pool that can never eject is pointed out at start')
})

test('a passing active check ends an ejection, unless unejectOnActiveCheck is false', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  // Requests fail while /health still passes: the situation where the two opinions differ.
  ups[0].status = 500
  const options = (uneject: boolean): object => ({
    algorithm: 'round-robin',
    targets: ups.map((u) => ({ url: u.url, id: u.id })),
    healthCheck: { interval: 30, jitter: 0 },
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60_000, unejectOnActiveCheck: uneject }
  })
  const gw = await startGateway({ pools: { yes: options(true), no: options(false) } }, (app) => {
    app.get('/yes', { config: { upstream: 'yes' } }, app.lb.forward)
    app.get('/no', { config: { upstream: 'no' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const yes = recordEjections(gw.app.lb.pool('yes'))
  await sequence(client, gw.url + '/yes', 4)
  t.equal(yes.ejections.length, 1, 'ejected for a minute')
  await until(() => yes.returns.length === 1, 5000, 'the next passing check to end it')
  t.equal(gw.app.lb.pool('yes').get('a')!.state, 'healthy')

  const no = recordEjections(gw.app.lb.pool('no'))
  await sequence(client, gw.url + '/no', 4)
  t.equal(no.ejections.length, 1)
  const log = new HealthLog(gw.app.lb.health, 'a')
  await until(() => log.checks.filter((c) => c.ok).length >= 3, 5000, 'three passing checks')
  t.same(no.returns, [], 'still ejected after three passing checks')
  t.equal(gw.app.lb.pool('no').get('a')!.state, 'ejected')
})
