import { test } from 'tap'
import { refusedUrl, sequence, until } from '../../helpers/gateway'
import { byLabel, samples, sampleValue } from '../../helpers/prom-text'
import { SECRET, stickyGateway, tally } from '../../affinity/fixtures'
import { CookieJar } from '../../helpers/cookie-jar'
import { observed, ofTarget } from './fixtures'

const FAST_CHECKS = { interval: 30, jitter: 0, timeout: 500 }

test('requests per target and status class, latency per answered try, retries of failed tries', async (t) => {
  const { ups, gw, client, scrape } = await observed(t, ['a', 'b'], { retry: false })
  ups[1].mode = 'error'
  t.same(await sequence(client, gw.url + '/x', 4), ['a', 'b', 'a', 'b'], 'b answers 500 and, retries off, the client sees it')
  const text = await scrape()
  for (const [target, cls, n] of [['a', '2xx', 2], ['a', '5xx', 0], ['b', '5xx', 2], ['b', '2xx', 0], ['a', 'error', 0], ['b', '4xx', 0]] as const) {
    t.equal(ofTarget(text, 'lb_requests_total', target, { code_class: cls }), n, `${target} ${cls}`)
  }
  t.equal(ofTarget(text, 'lb_request_duration_seconds_count', 'a'), 2)
  t.equal(ofTarget(text, 'lb_request_duration_seconds_bucket', 'b', { le: '+Inf' }), 2)
  t.ok((ofTarget(text, 'lb_request_duration_seconds_sum', 'a') ?? 0) > 0, 'latency adds up')
  t.same(byLabel(text, 'lb_retries_total', 'result', { pool: 'main' }), { attempted: 0, succeeded: 0, budget_exhausted: 0, limit_exceeded: 0, deadline_exceeded: 0 },
    'every result has its series before any retry')

  // With retries on 500, each of b's answers sends the request on to a.
  const retrying = await observed(t, ['a', 'b'], { retry: { statuses: [500] } })
  retrying.ups[1].mode = 'error'
  t.same(await sequence(retrying.client, retrying.gw.url + '/x', 4), ['a', 'a', 'a', 'a'])
  const after = await retrying.scrape()
  const bTries = ofTarget(after, 'lb_requests_total', 'b', { code_class: '5xx' }) ?? 0
  t.ok(bTries >= 1, 'b was tried')
  t.equal(sampleValue(after, 'lb_retries_total', { pool: 'main', result: 'attempted' }), bTries, 'one retry per failed try of b')
  t.equal(sampleValue(after, 'lb_retries_total', { pool: 'main', result: 'succeeded' }), bTries, 'each answered by a')
  t.equal(ofTarget(after, 'lb_requests_total', 'a', { code_class: '2xx' }), 4, 'every request answered by a')
})

test('tries that get no answer count as code_class "error" with their reason; tries the client left, as "aborted"', async (t) => {
  const { ups, gw, client, scrape } = await observed(t, ['a'])
  const dead = await refusedUrl()
  gw.app.lb.pool('main').add({ url: dead, id: 'dead' })
  const answers = await sequence(client, gw.url + '/x', 4)
  t.same(answers, ['a', 'a', 'a', 'a'], 'a refused connection fails over to a')
  let text = await scrape()
  const refused = ofTarget(text, 'lb_upstream_errors_total', 'dead', { reason: 'connect' }) ?? 0
  t.ok(refused >= 1, 'the dead target was tried')
  t.equal(ofTarget(text, 'lb_requests_total', 'dead', { code_class: 'error' }), refused)
  t.equal(ofTarget(text, 'lb_request_duration_seconds_count', 'dead'), 0, 'no answer, no latency sample')
  t.equal(sampleValue(text, 'lb_retries_total', { pool: 'main', result: 'attempted' }), refused, 'each refusal failed over once')
  t.equal(sampleValue(text, 'lb_retries_total', { pool: 'main', result: 'succeeded' }), refused, 'and a answered')
  t.same(samples(text, 'lb_upstream_errors_total', { target: 'dead' }).map((s) => s.labels.reason), ['connect', 'timeout', 'reset', 'queue'])

  // A client that leaves while the upstream hangs: in flight while waiting, then 'aborted', which is not an upstream error.
  await gw.app.lb.pool('main').remove('dead')
  ups[0].mode = 'hang'
  const controllers = [new AbortController(), new AbortController()]
  const pending = controllers.map(async (c) => client.send(gw.url + '/slow', { signal: c.signal }).catch(() => null))
  await until(() => ups[0].active === 2, 5000, 'both requests at the upstream')
  text = await scrape()
  t.equal(ofTarget(text, 'lb_in_flight_requests', 'a'), 2)
  t.equal(samples(text, 'lb_in_flight_requests', { target: 'dead' }).length, 0, 'a removed target has no series any more')
  for (const c of controllers) c.abort()
  await Promise.all(pending)
  await until(() => gw.app.lb.pool('main').inFlight === 0, 5000, 'in-flight back to 0')
  text = await scrape()
  t.equal(ofTarget(text, 'lb_in_flight_requests', 'a'), 0)
  t.equal(ofTarget(text, 'lb_requests_total', 'a', { code_class: 'aborted' }), 2)
  t.equal(ofTarget(text, 'lb_requests_total', 'a', { code_class: 'error' }), 0, 'the error ratio of a healthy target stays 0 when clients give up')
  t.same(samples(text, 'lb_upstream_errors_total', { target: 'a' }).map((s) => s.value), [0, 0, 0, 0], 'and no upstream error is counted')
  const a = gw.app.lb.pool('main').get('a')!
  t.equal(a.failures, 0, 'the status page shows no failure of a')
  t.equal(a.aborted, 2, 'but two client aborts')
})

test('an empty pool counts requests without a target', async (t) => {
  const { gw, client, scrape } = await observed(t, [])
  t.equal((await client.send(gw.url + '/x')).status, 503)
  t.equal((await client.send(gw.url + '/y')).status, 503)
  t.equal(sampleValue(await scrape(), 'lb_no_target_total', { pool: 'main' }), 2)
})

test('weight, joining targets and inline pools', async (t) => {
  const { ups, gw, scrape } = await observed(t, ['a', 'b'], { algorithm: 'weighted-round-robin' })
  const pool = gw.app.lb.pool('main')
  pool.setWeight('b', 5)
  let text = await scrape()
  t.equal(ofTarget(text, 'lb_target_weight', 'a'), 1)
  t.equal(ofTarget(text, 'lb_target_weight', 'b'), 5)
  pool.add({ url: ups[0].url + '/v2', id: 'a2', weight: 3 })
  text = await scrape()
  t.equal(ofTarget(text, 'lb_target_weight', 'a2'), 3, 'a target added at run time has its series')
  t.equal(ofTarget(text, 'lb_requests_total', 'a2', { code_class: '2xx' }), 0)
  t.same(samples(text, 'lb_target_healthy').map((s) => s.labels.target), ['a', 'a2', 'b'], 'in id order')
})

test('an id that moves to a new address keeps one series while the old one drains', async (t) => {
  const { ups, gw, client, scrape } = await observed(t, ['a', 'b'])
  const pool = gw.app.lb.pool('main')
  ups[0].mode = 'hang'
  const leaving = new AbortController()
  const pending = client.send(gw.url + '/x', { signal: leaving.signal }).catch(() => null)
  await until(() => ups[0].active === 1, 5000, 'a request waiting at a')
  // a moves to b's address (a base path keeps the URL distinct): the old a drains, its request still in flight.
  pool.reconcile([{ url: ups[1].url + '/a', id: 'a' }, { url: ups[1].url, id: 'b' }])
  t.equal(pool.targets.filter((x) => x.id === 'a').length, 2, 'two members share the id')
  const text = await scrape()
  t.same(samples(text, 'lb_in_flight_requests', { target: 'a' }).map((s) => s.value), [1], 'one series for the id, with the old member’s request')
  t.same(samples(text, 'lb_target_healthy', { target: 'a' }).length, 1)
  t.same(samples(text, 'lb_request_duration_seconds_count', { target: 'a' }).length, 1)
  leaving.abort()
  await pending
  await until(() => pool.targets.length === 2, 5000, 'the old a gone')
  t.equal((await client.send(gw.url + '/y')).status, 200)
  t.equal((await client.send(gw.url + '/y')).status, 200)
  const later = await scrape()
  t.equal(ofTarget(later, 'lb_requests_total', 'a', { code_class: 'aborted' }), 1, 'the old member’s counts stay with the id')
  t.equal(ofTarget(later, 'lb_requests_total', 'a', { code_class: '2xx' }), 1, 'and the new member adds to them')
})

test('health checks, transitions and the healthy gauge follow the health registry', async (t) => {
  const { ups, gw, scrape } = await observed(t, ['a', 'b'], { healthCheck: { ...FAST_CHECKS, unhealthyThreshold: 2, healthyThreshold: 1 } })
  const b = gw.app.lb.pool('main').get('b')!
  await until(() => b.lastCheck?.ok === true, 5000, 'a first passing check of b')
  ups[1].mode = 'error'
  await until(() => !b.healthy, 5000, 'b unhealthy')
  const text = await scrape()
  t.equal(ofTarget(text, 'lb_target_healthy', 'a'), 1)
  t.equal(ofTarget(text, 'lb_target_healthy', 'b'), 0)
  t.equal(sampleValue(text, 'lb_health_transitions_total', { target: 'b', to: 'unhealthy' }), 1)
  t.equal(sampleValue(text, 'lb_health_transitions_total', { target: 'a', to: 'unhealthy' }), undefined, 'a never changed')
  t.ok((sampleValue(text, 'lb_health_checks_total', { target: 'b', type: 'http', result: 'failure' }) ?? 0) >= 2, 'unhealthyThreshold failures at least')
  t.ok((sampleValue(text, 'lb_health_checks_total', { target: 'b', type: 'http', result: 'success' }) ?? 0) >= 1)
  t.ok((sampleValue(text, 'lb_health_checks_total', { target: 'a', type: 'http', result: 'success' }) ?? 0) >= 1)
  t.equal(sampleValue(text, 'lb_health_checks_total', { target: 'a', type: 'http', result: 'failure' }), undefined)
})

test('outlier ejections are counted and the ejected target reads unhealthy', async (t) => {
  const { ups, gw, client, scrape } = await observed(t, ['a', 'b'], { retry: false, outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 60_000 } })
  ups[1].mode = 'error'
  t.same(await sequence(client, gw.url + '/x', 6), ['a', 'b', 'a', 'b', 'a', 'a'], 'b leaves after its second 500')
  const text = await scrape()
  t.equal(ofTarget(text, 'lb_ejections_total', 'b'), 1)
  t.equal(ofTarget(text, 'lb_ejections_total', 'a'), 0)
  t.equal(ofTarget(text, 'lb_target_healthy', 'b'), 0)
})

test('affinity results per pool', async (t) => {
  const { gw, client, results, jar } = await stickyGateway(t, ['a', 'b'])
  const browser = jar()
  await browser.send(gw.url + '/x')
  await browser.send(gw.url + '/x')
  await browser.send(gw.url + '/x')
  const forger = new CookieJar(client)
  forger.cookies.set('lb_main', 'a.0.' + 'A'.repeat(32))
  await forger.send(gw.url + '/x')
  const text = (await client.send(gw.url + '/metrics')).text
  const counted = Object.fromEntries(samples(text, 'lb_affinity_total', { pool: 'main' }).map((s) => [s.labels.result, s.value]))
  t.same(counted, { hit: 2, miss: 1, reassigned: 0, rejected: 1, expired: 0 })
  t.same(tally(results), { miss: 1, hit: 2, rejected: 1 }, 'the same as the pool’s own events')
  t.ok(SECRET.length > 0)
})
