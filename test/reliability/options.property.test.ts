import { test } from 'tap'
import { pickFor } from '../helpers/pick'
import fc from 'fast-check'
import type { FastifyRequest } from 'fastify'
import { DemoUpstream } from '../helpers/demo-upstream'
import { algorithms, type AlgorithmName } from '../../lib/balancers/index'
import { resolvePoolOptions, type LbOptions, type PoolOptions } from '../../lib/options/resolve'
import type { HealthCheckOptions } from '../../lib/health/options'
import { Pool } from '../../lib/pool/pool'
import { Client, refusedUrl, startGateway } from '../helpers/gateway'
import { startupError } from '../helpers/startup'

const NAMES = Object.keys(algorithms) as AlgorithmName[]
const NOT_HASHING = NAMES.filter((n) => n !== 'consistent-hash' && n !== 'maglev')
const SECRET = 'a-secret-of-at-least-sixteen-bytes'

// ---- values of the wrong type or out of range (null and undefined mean "the default" and are not among them)

const junk = fc.oneof(fc.boolean(), fc.array(fc.integer(), { maxLength: 2 }), fc.constant({}), fc.constant(() => 1))
const strings = fc.string({ maxLength: 12 })

function badInteger (min: number, max: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.integer({ max: min - 1 }),
    fc.integer({ min: max + 1 }),
    fc.double({ noNaN: true }).filter((d) => !Number.isInteger(d)),
    fc.constantFrom(Number.NaN, Infinity, -Infinity),
    strings,
    junk
  )
}

function badNumber (min: number, max: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.double({ max: min, noNaN: true }).filter((d) => d < min),
    fc.double({ min: max, noNaN: true }).filter((d) => d > max),
    fc.constantFrom(Number.NaN, Infinity, -Infinity),
    strings,
    junk
  )
}

function badChoice (allowed: readonly string[]): fc.Arbitrary<unknown> {
  return fc.oneof(strings.filter((s) => !allowed.includes(s)), fc.integer(), junk)
}

const badBoolean = fc.oneof(strings, fc.integer(), fc.array(fc.boolean(), { maxLength: 1 }), fc.constant({}))
const badObject = fc.oneof(strings, fc.integer(), fc.constant(true), fc.array(fc.integer(), { maxLength: 2 }))

function isPrime (n: number): boolean {
  if (n < 2) return false
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false
  return true
}

interface Field {
  /** The pool the error message names: the pool's name, or "(plugin)" for plugin options. */
  scope: string
  /** The field as the error message names it. */
  field: string
  /** Plugin options with `value` in that field and everything else valid. */
  options: (value: unknown) => unknown
  bad: fc.Arbitrary<unknown>
}

const target = 'http://127.0.0.1:9'

/** A pool field: `path` inside the pool options, next to valid `around` options. */
function pool (field: string, bad: fc.Arbitrary<unknown>, around: Record<string, unknown> = {}): Field {
  const path = field.split('.')
  return {
    scope: 'main',
    field,
    bad,
    options: (value) => {
      const spec: Record<string, unknown> = { targets: [target], ...structuredClone(around) }
      let at = spec
      for (const key of path.slice(0, -1)) {
        at[key] = { ...(at[key] as Record<string, unknown> | undefined) }
        at = at[key] as Record<string, unknown>
      }
      at[path[path.length - 1]] = value
      return { pools: { main: spec } }
    }
  }
}

function plugin (field: string, bad: fc.Arbitrary<unknown>): Field {
  const [key, sub] = field.split('.')
  return { scope: '(plugin)', field, bad, options: (value) => ({ [key]: sub === undefined ? value : { [sub]: value } }) }
}

const fields: Field[] = [
  plugin('connectTimeout', badInteger(1, 600_000)),
  plugin('connections', badInteger(1, 100_000)),
  plugin('tls.rejectUnauthorized', badBoolean),
  { scope: 'main', field: 'targets', bad: fc.oneof(strings, fc.integer(), fc.constant({})), options: (value) => ({ pools: { main: { targets: value } } }) },
  {
    scope: 'main',
    field: 'targets[0].url',
    bad: fc.oneof(strings.filter((s) => !/^\s*https?:/i.test(s)), fc.integer(), junk, fc.constantFrom('ftp://127.0.0.1/', 'http://u:p@127.0.0.1/', 'http://127.0.0.1/?q=1', 'http://127.0.0.1/#f')),
    options: (value) => ({ pools: { main: { targets: [{ url: value }] } } })
  },
  { scope: 'main', field: 'targets[0].weight', bad: badInteger(1, 1_000_000), options: (value) => ({ pools: { main: { targets: [{ url: target, weight: value }] } } }) },
  {
    scope: 'main',
    field: 'targets[0].id',
    bad: fc.oneof(fc.string({ maxLength: 80 }).filter((s) => !/^[A-Za-z0-9._~-]{1,64}$/.test(s)), fc.integer(), junk),
    options: (value) => ({ pools: { main: { targets: [{ url: target, id: value }] } } })
  },
  pool('algorithm', badChoice(NAMES)),
  pool('hashFallback', badChoice(NOT_HASHING)),
  pool('hashKey', fc.oneof(strings.filter((s) => s !== 'ip'), fc.integer(), fc.constant({ header: 'a', query: 'b' }), fc.constant({ body: 'x' }))),
  pool('balanceFactor', badNumber(1, 100).filter((v) => v !== 0)),
  pool('pointsPerWeight', badInteger(1, 10_000)),
  pool('tableSize', fc.oneof(badInteger(1, 10_000_019), fc.integer({ min: 1, max: 200_000 }).filter((n) => !isPrime(n)))),
  pool('timeout', badInteger(1, 3_600_000)),
  pool('retry', badObject),
  pool('retry.attempts', badInteger(0, 10)),
  pool('retry.budgetPercent', badNumber(0, 1)),
  pool('retry.minRetriesPerSecond', badNumber(0, 1_000_000)),
  pool('retry.deadline', badInteger(0, 3_600_000)),
  pool('retry.backoff', badObject),
  pool('retry.backoff.base', badInteger(0, 60_000)),
  pool('retry.backoff.max', badInteger(25, 60_000)),
  pool('retry.statuses', fc.oneof(strings, fc.integer(), fc.constant({}))),
  { scope: 'main', field: 'retry.statuses[0]', bad: badInteger(500, 599), options: (value) => ({ pools: { main: { targets: [target], retry: { statuses: [value] } } } }) },
  { scope: 'main', field: 'retry.methods[0]', bad: fc.oneof(strings.filter((s) => !/^[A-Za-z]+$/.test(s)), fc.integer(), junk), options: (value) => ({ pools: { main: { targets: [target], retry: { methods: [value] } } } }) },
  // A non-empty array is a list of checks, whose items are named by index below.
  pool('healthCheck', badObject.filter((v) => !Array.isArray(v) || v.length === 0)),
  pool('healthCheck.type', badChoice(['http', 'tcp'])),
  pool('healthCheck.path', fc.oneof(strings.filter((s) => !/^\/[^\s#]*$/.test(s)), fc.integer(), junk)),
  pool('healthCheck.interval', badInteger(1, 3_600_000)),
  pool('healthCheck.unhealthyInterval', badInteger(1, 3_600_000)),
  { scope: 'main', field: 'healthCheck[1]', bad: badObject, options: (value) => ({ pools: { main: { targets: [target], healthCheck: [{ type: 'tcp' }, value] } } }) },
  {
    scope: 'main',
    field: 'healthCheck[1].unhealthyInterval',
    bad: badInteger(1, 3_600_000),
    options: (value) => ({ pools: { main: { targets: [target], healthCheck: [{ type: 'tcp' }, { unhealthyInterval: value }] } } })
  },
  pool('healthCheck.timeout', badInteger(1, 600_000)),
  pool('healthCheck.jitter', badNumber(0, 1)),
  pool('healthCheck.healthyThreshold', badInteger(1, 1000)),
  pool('healthCheck.unhealthyThreshold', badInteger(1, 1000)),
  pool('healthCheck.port', badInteger(1, 65_535)),
  pool('healthCheck.initialState', badChoice(['healthy', 'unhealthy'])),
  pool('outlierDetection', badObject),
  pool('outlierDetection.consecutiveFailures', badInteger(1, 1000)),
  pool('outlierDetection.baseEjectionTime', badInteger(1, 86_400_000)),
  pool('outlierDetection.maxEjectionTime', badInteger(30_000, 86_400_000)),
  pool('outlierDetection.maxEjectionPercent', badNumber(0, 1)),
  pool('outlierDetection.unejectOnActiveCheck', badBoolean),
  pool('slowStart', badObject),
  pool('slowStart.window', badInteger(1, 3_600_000)),
  pool('slowStart.minWeight', badNumber(0.01, 1), { slowStart: { window: 1000 } }),
  pool('panicThreshold', badNumber(0, 1)),
  pool('affinity', badObject),
  pool('affinity.maxAge', badInteger(0, 400 * 24 * 3600), { affinity: { secret: SECRET } }),
  pool('affinity.sameSite', badChoice(['lax', 'strict', 'none']), { affinity: { secret: SECRET } }),
  pool('affinity.httpOnly', badBoolean, { affinity: { secret: SECRET } }),
  pool('affinity.strict', badBoolean, { affinity: { secret: SECRET } }),
  pool('affinity.cookie', fc.oneof(fc.string({ maxLength: 70 }).filter((s) => !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$/.test(s)), fc.integer(), junk), { affinity: { secret: SECRET } })
]

test('every option field with a wrong type or range fails startup, naming the field', async (t) => {
  const sample = fc.constantFrom(...fields).chain((f) => f.bad.map((value) => ({ f, value })))
  await fc.assert(fc.asyncProperty(sample, async ({ f, value }) => {
    const err = await startupError(f.options(value))
    if (err.code !== 'FST_LB_INVALID_OPTION') throw new Error(`${f.field}: ${err.code ?? ''} ${err.message}`)
    const named = `Invalid option for pool "${f.scope}": ${f.field} = `
    if (!err.message.startsWith(named)) throw new Error(`expected "${named}...", got "${err.message}"`)
  }), { numRuns: 200 })
  t.pass('200 wrong values, each rejected naming its field')
})

// ---- options that pass validation

const weight = fc.oneof(fc.integer({ min: 1, max: 10 }), fc.constantFrom(1_000_000), fc.integer({ min: 1, max: 1_000_000 }))
const hashKey = fc.constantFrom<PoolOptions['hashKey']>(
  'ip', { header: 'x-k' }, { cookie: 'k' }, { query: 'k' }, { param: '*' },
  (request: FastifyRequest) => request.headers['x-k'] as string | undefined
)

function validCheck (type: fc.Arbitrary<'http' | 'tcp'>): fc.Arbitrary<HealthCheckOptions> {
  return fc.record({
    type,
    interval: fc.integer({ min: 1, max: 3_600_000 }),
    unhealthyInterval: fc.integer({ min: 1, max: 3_600_000 }),
    timeout: fc.integer({ min: 1, max: 600_000 }),
    jitter: fc.double({ min: 0, max: 1, noNaN: true }),
    healthyThreshold: fc.integer({ min: 1, max: 1000 }),
    unhealthyThreshold: fc.integer({ min: 1, max: 1000 }),
    initialState: fc.constantFrom('healthy' as const, 'unhealthy' as const)
  }, { requiredKeys: ['type'] })
}

const validPool = fc.record({
  algorithm: fc.constantFrom(...NAMES),
  hashKey,
  hashFallback: fc.constantFrom(...NOT_HASHING),
  balanceFactor: fc.oneof(fc.constant(0), fc.double({ min: 1, max: 100, noNaN: true })),
  pointsPerWeight: fc.integer({ min: 1, max: 10_000 }),
  tableSize: fc.constantFrom(2, 3, 13, 1009, 65537, 1_000_003),
  timeout: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 3_600_000 })),
  retry: fc.oneof(fc.constant(false as const), fc.record({
    attempts: fc.integer({ min: 0, max: 10 }),
    statuses: fc.uniqueArray(fc.integer({ min: 500, max: 599 }), { maxLength: 4 }),
    methods: fc.subarray(['GET', 'get', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD']),
    budgetPercent: fc.double({ min: 0, max: 1, noNaN: true }),
    minRetriesPerSecond: fc.double({ min: 0, max: 1_000_000, noNaN: true })
  }, { requiredKeys: [] })),
  // A list's checks differ in type, as the same check twice is refused.
  healthCheck: fc.oneof(fc.constant(false as const), validCheck(fc.constantFrom('http' as const, 'tcp' as const)),
    fc.tuple(validCheck(fc.constant('tcp' as const)), validCheck(fc.constant('http' as const)))),
  outlierDetection: fc.oneof(fc.constant(false as const), fc.record({
    consecutiveFailures: fc.integer({ min: 1, max: 1000 }),
    failOn: fc.subarray(['connect', 'timeout', 'reset', '5xx'] as const),
    baseEjectionTime: fc.integer({ min: 1, max: 30_000 }),
    maxEjectionPercent: fc.double({ min: 0, max: 1, noNaN: true }),
    unejectOnActiveCheck: fc.boolean()
  }, { requiredKeys: [] })),
  slowStart: fc.oneof(fc.constant(false as const), fc.record({ window: fc.integer({ min: 1, max: 3_600_000 }), minWeight: fc.double({ min: 0.01, max: 1, noNaN: true }) }, { requiredKeys: ['window'] })),
  panicThreshold: fc.double({ min: 0, max: 1, noNaN: true }),
  affinity: fc.option(fc.record({
    secret: fc.constant(SECRET),
    maxAge: fc.integer({ min: 0, max: 400 * 24 * 3600 }),
    strict: fc.boolean(),
    sameSite: fc.constantFrom('lax' as const, 'strict' as const)
  }, { requiredKeys: ['secret'] }), { nil: undefined })
}, { requiredKeys: [] })

test('options that pass validation serve requests without a crash or a leak', async (t) => {
  const up = await new DemoUpstream('up').start()
  const dead = await refusedUrl()
  const client = new Client()
  t.teardown(async () => { await client.close(); await up.stop() })
  const statuses = new Set<number>()
  await fc.assert(fc.asyncProperty(validPool, weight, weight, weight, async (spec, w1, w2, w3) => {
    const options: LbOptions = {
      connectTimeout: 1000,
      pools: { main: { ...(spec as PoolOptions), targets: [{ url: up.url, id: 'up', weight: w1 }, { url: dead, id: 'dead', weight: w2 }] } }
    }
    const gw = await startGateway(options)
    try {
      const pool = gw.app.lb.pool('main')
      for (const [i, method] of (['GET', 'POST', 'GET'] as const).entries()) {
        if (i === 2) pool.setWeight('dead', w3)
        const res = await client.send(`${gw.url}/p/x?k=key${i}`, {
          method,
          headers: { 'x-k': `key${i}`, cookie: `k=key${i}`, 'content-type': 'application/json' },
          body: method === 'POST' ? '{"a":1}' : undefined
        })
        const text = res.text
        statuses.add(res.status)
        if (res.status === 200) continue
        const body = JSON.parse(text) as { code?: string }
        if (![502, 503, 504].includes(res.status) || !/^FST_LB_/.test(body.code ?? '')) throw new Error(`${method}: ${res.status} ${text}`)
        if (text.includes(String(up.port)) || text.includes(dead.split(':')[2])) throw new Error(`an address in ${text}`)
      }
      await new Promise((resolve) => setImmediate(resolve))
      if (pool.inFlight !== 0 || pool.activeRetries !== 0) throw new Error(`left in flight: ${pool.inFlight}, retries ${pool.activeRetries}`)
    } finally {
      await gw.close()
    }
  }), { numRuns: 100 })
  t.ok(statuses.has(200), `answers seen: ${[...statuses].sort().join(', ')}`)
})

test('the largest valid weights and point counts build a hash ring of bounded size', async (t) => {
  for (const algorithm of ['consistent-hash', 'ip-hash'] as const) {
    // 10,000 points for each of a million units of weight would be 10^10 points: more than any array holds.
    const options = resolvePoolOptions('big', {
      algorithm,
      hashKey: { header: 'x-k' },
      pointsPerWeight: 10_000,
      targets: [{ url: 'http://127.0.0.1:1', id: 'heavy', weight: 1_000_000 }, { url: 'http://127.0.0.1:2', id: 'light', weight: 1 }]
    })
    const big = new Pool(options)
    const picks: string[] = []
    for (let i = 0; i < 2000; i++) picks.push(pickFor(big, { headers: { 'x-k': `k${i}` }, ip: `10.0.${i >> 8}.${i & 255}` })!.id)
    t.ok(picks.filter((id) => id === 'heavy').length >= 1990, `${algorithm}: weights still decide the share`)
    big.setWeight('light', 1_000_000)
    const light = picks.map((_, i) => pickFor(big, { headers: { 'x-k': `k${i}` }, ip: `10.0.${i >> 8}.${i & 255}` })!.id).filter((id) => id === 'light').length
    t.ok(light > 700 && light < 1300, `${algorithm}: equal weights share the keys again (${light} of 2000)`)
  }
})
