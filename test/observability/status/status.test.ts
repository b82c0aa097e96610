import { test } from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { StatusReport, TargetStatus } from '../../../lib/observability/status-report'
import { startUpstreams } from '../../helpers/demo-upstream'
import { until } from '../../helpers/gateway'
import { observed, type Observed } from '../metrics/fixtures'

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'

async function report ({ client, gw }: Observed): Promise<StatusReport> {
  return JSON.parse((await client.send(gw.url + '/lb/status')).text) as StatusReport
}

function byId (targets: TargetStatus[]): Record<string, TargetStatus> {
  return Object.fromEntries(targets.map((x) => [x.id, x]))
}

test('JSON for machines: every pool with its algorithm, every target with its state and counters', async (t) => {
  const o = await observed(t, ['a', 'b'], {}, {}, (app) => {
    app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
    app.get('/inline/*', { config: { upstream: { targets: [{ url: 'http://127.0.0.1:9', id: 'nine', weight: 3 }], algorithm: 'random' } } }, app.lb.forward)
  })
  const { ups, gw, client } = o
  await client.send(gw.url + '/x')
  // b answers 503: the request is retried on a.
  ups[1].status = 503
  await client.send(gw.url + '/x')
  const res = await client.send(gw.url + '/lb/status')
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers.vary, 'accept')
  const body = JSON.parse(res.text) as StatusReport
  t.ok(Math.abs(body.generatedAt - Date.now()) < 60_000, 'generatedAt is epoch ms')
  const idle = {
    state: 'healthy',
    eligible: true,
    weight: 1,
    effectiveWeight: 1,
    inFlight: 0,
    lastCheck: null,
    ejectedUntil: null,
    slowStartUntil: null,
    priority: 0,
    maxConnections: 0,
    full: false,
    tunnels: 0
  }
  const unlimited = { servingTier: 0, maxInFlight: 0, queued: null, overloaded: { full: 0, queueFull: 0, queueTimeout: 0 }, fallbacks: null }
  t.same(body.pools.map((p) => ({ ...p, targets: p.targets.map((x) => ({ ...x, ewmaMs: typeof x.ewmaMs })) })), [
    {
      name: 'main',
      algorithm: 'round-robin',
      eligible: 2,
      panic: false,
      inFlight: 0,
      noTarget: 0,
      ...unlimited,
      retries: { attempted: 1, succeeded: 1, budgetExhausted: 0, limitExceeded: 0, deadlineExceeded: 0 },
      circuit: null,
      targets: [
        { id: 'a', url: ups[0].url, ...idle, requests: 2, failures: 0, aborted: 0, ewmaMs: 'number' },
        { id: 'b', url: ups[1].url, ...idle, requests: 1, failures: 1, aborted: 0, ewmaMs: 'number' }
      ]
    },
    {
      name: '/inline/*',
      algorithm: 'random',
      eligible: 1,
      panic: false,
      inFlight: 0,
      noTarget: 0,
      ...unlimited,
      retries: { attempted: 0, succeeded: 0, budgetExhausted: 0, limitExceeded: 0, deadlineExceeded: 0 },
      circuit: null,
      targets: [{ id: 'nine', url: 'http://127.0.0.1:9', ...idle, weight: 3, effectiveWeight: 3, requests: 0, failures: 0, aborted: 0, ewmaMs: 'object' }]
    }
  ], 'an unmeasured target has ewmaMs null')
  t.equal((await client.send(gw.url + '/lb/status', { method: 'HEAD' })).status, 200, 'HEAD too')
})

test('every state: healthy, unhealthy with its last check, ejected until, slow start, draining', async (t) => {
  const o = await observed(t, ['a', 'b', 'c'], {
    retry: false,
    timeout: 300,
    healthCheck: { interval: 30, jitter: 0, timeout: 500, unhealthyThreshold: 1, healthyThreshold: 1 },
    outlierDetection: { consecutiveFailures: 1, baseEjectionTime: 60_000, maxEjectionPercent: 1, unejectOnActiveCheck: false },
    slowStart: { window: 60_000 }
  }, { pools: { held: { targets: [] } } }, (app) => {
    app.all('/held/*', { config: { upstream: 'held' } }, app.lb.forward)
    app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  })
  const { ups, gw, client } = o
  const [e, d] = await startUpstreams(['e', 'd'])
  t.teardown(async () => { await e.stop(); await d.stop() })
  const main = gw.app.lb.pool('main')
  await until(() => main.targets.every((x) => x.lastCheck !== null), 5000, 'first checks')
  // b fails its health checks.
  ups[1].mode = 'error'
  await until(() => main.get('b')!.state === 'unhealthy', 5000, 'b unhealthy')
  // c passes them but lets traffic time out: outlier detection ejects it.
  ups[2].mode = 'hang'
  for (let i = 0; i < 6 && main.get('c')!.ejectedUntil === 0; i++) await client.send(gw.url + '/x')
  // e joins at run time and ramps up.
  main.add({ url: e.url, id: 'e' })
  // d drains while a request waits for it.
  const held = gw.app.lb.pool('held')
  held.add({ url: d.url, id: 'd' })
  d.mode = 'hang'
  const waiting = new AbortController()
  const pending = client.send(gw.url + '/held/x', { signal: waiting.signal }).catch(() => null)
  await until(() => d.active === 1, 5000, 'a request at d')
  const drained = held.drain('d')

  const body = await report(o)
  t.same(body.pools.map((p) => [p.name, p.eligible]), [['main', 2], ['held', 0]])
  const x = byId(body.pools[0].targets)
  const now = Date.now()
  t.match(x.a, { state: 'healthy', eligible: true, lastCheck: { ok: true }, ejectedUntil: null, slowStartUntil: null })
  t.match(x.b, { state: 'unhealthy', eligible: false, lastCheck: { ok: false, error: 'status 503' } })
  t.ok(Math.abs(x.b.lastCheck!.at - now) < 5000, 'lastCheck.at is epoch ms')
  t.match(x.c, { state: 'ejected', eligible: false, lastCheck: { ok: true } })
  t.ok(x.c.ejectedUntil! > now + 50_000, 'ejected for the base ejection time')
  t.match(x.e, { state: 'slow-start', eligible: true, weight: 1 })
  t.ok(x.e.effectiveWeight < 1 && x.e.slowStartUntil! > now, 'ramping up')
  t.match(byId(body.pools[1].targets).d, { state: 'draining', eligible: false, inFlight: 1 })
  waiting.abort()
  await pending
  await drained
  t.same((await report(o)).pools[1].targets, [], 'a drained target leaves the page')
})

test('hideUrls leaves every upstream address out, of the JSON and of the HTML', async (t) => {
  const o = await observed(t, ['a'], {}, { status: { hideUrls: true } })
  const json = await o.client.send(o.gw.url + '/lb/status')
  const html = await o.client.send(o.gw.url + '/lb/status', { headers: { accept: BROWSER } })
  const address = o.ups[0].url.replace('http://', '')
  t.same(Object.keys((JSON.parse(json.text) as StatusReport).pools[0].targets[0]).includes('url'), false)
  t.notOk(json.text.includes(address))
  t.notOk(html.text.includes(address))
  t.notOk(html.text.includes('<th>URL</th>'), 'no URL column')
})

test('HTML for browsers: a table per pool, a row per target, escaped names, no external asset', async (t) => {
  const o = await observed(t, ['a', 'b'], {}, { pools: { '<i>"odd" & new</i>': { targets: [{ url: 'http://127.0.0.1:9', id: 'x' }] } }, status: { refreshSeconds: 2 } })
  const res = await o.client.send(o.gw.url + '/lb/status', { headers: { accept: BROWSER } })
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  const html = res.text
  t.equal(html.match(/<table>/g)?.length, 2)
  t.same([...html.matchAll(/<tr class="state-(\w+)" data-target="([^"]+)"/g)].map((m) => `${m[2]}:${m[1]}`), ['a:healthy', 'b:healthy', 'x:healthy'])
  t.ok(html.includes('<h2>&lt;i&gt;&quot;odd&quot; &amp; new&lt;/i&gt; <small>'), 'the pool name is escaped')
  t.notOk(html.includes('<i>'), 'no markup from a name')
  t.ok(html.includes('<meta http-equiv="refresh" content="2">'))
  t.notOk(/(src|href)="(https?:)?\/\//.test(html), 'nothing loaded from elsewhere')
  t.notOk(html.includes('<script'), 'no script')
  t.match((await o.client.send(o.gw.url + '/lb/status?format=html')).headers['content-type'], /^text\/html/, '?format=html without the header')
  t.match((await o.client.send(o.gw.url + '/lb/status?format=json', { headers: { accept: BROWSER } })).headers['content-type'], /^application\/json/, '?format=json in a browser')
  t.equal((await o.client.send(o.gw.url + '/lb/status?format=xml')).status, 400)
})

/** A guard as a user writes one: a bearer token in the Authorization header. */
function bearer (token: string) {
  return async function requireToken (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.headers.authorization !== `Bearer ${token}`) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ statusCode: 401, error: 'Unauthorized', message: 'token required' })
    }
  }
}

test('a guard refuses /lb/status and /metrics without credentials and lets the right token through', async (t) => {
  const guard = bearer('s3cret')
  const o = await observed(t, ['a'], {}, { status: { onRequest: guard }, metrics: { onRequest: [guard] } })
  for (const path of ['/lb/status', '/metrics']) {
    const none = await o.client.send(o.gw.url + path)
    t.equal(none.status, 401, `${path} without a token`)
    t.equal(none.headers['www-authenticate'], 'Bearer')
    t.notOk(none.text.includes('127.0.0.1'), 'the refusal shows nothing of the pools')
    t.equal((await o.client.send(o.gw.url + path, { headers: { authorization: 'Bearer wrong' } })).status, 401, `${path} with a wrong token`)
    t.equal((await o.client.send(o.gw.url + path, { method: 'HEAD' })).status, 401, `HEAD ${path} without a token`)
    t.equal((await o.client.send(o.gw.url + path, { headers: { authorization: 'Bearer s3cret' } })).status, 200, `${path} with the token`)
  }
  t.equal((await o.client.send(o.gw.url + '/x')).servedBy, 'a', 'proxied routes are not guarded')
})
