import { test } from 'tap'
import { pickFor } from '../helpers/pick'
import { request } from 'undici'
import { DemoUpstream } from '../helpers/demo-upstream'
import { FaultServer, type FaultMode } from '../helpers/fault-server'
import { Client, startGateway, until } from '../helpers/gateway'
import { assertIdle, assertNoLeak, resources, untilNoConnections } from '../helpers/leaks'

/** Per-try timeout of the gateway under test, in ms. */
const TIMEOUT = 500

/**
 * What a client sees: `good` (200 from the healthy upstream), `fault` (200 with
 * the faulty upstream's whole body), `502` / `504` (the gateway's own JSON
 * answer), or `cut` (a 200 head, then the connection closes before the body
 * it announced).
 */
type Seen = 'good' | 'fault' | '502' | '504' | 'cut'

interface Case {
  what: string
  mode: FaultMode
  delayMs: number
  /** GET and POST on a pool of the faulty upstream alone. */
  alone: [Seen, Seen]
  /** GET and POST on a pool of the faulty upstream (tried first) and a healthy one. */
  mixed: [Seen, Seen]
  /** Whether each try on the faulty upstream counts as a failure of it. */
  penalised: boolean
}

const cases: Case[] = [
  // Answers of a known length up to 64 KiB are read whole before they are passed on: cut short, the try failed.
  { what: 'headers, then the connection is cut before the body', mode: 'head-only', delayMs: 20, alone: ['502', '502'], mixed: ['good', '502'], penalised: true },
  { what: 'headers, then no body until the timeout', mode: 'head-only', delayMs: 4000, alone: ['504', '504'], mixed: ['good', '504'], penalised: true },
  { what: 'killed mid-body (content-length)', mode: 'half-body', delayMs: 20, alone: ['502', '502'], mixed: ['good', '502'], penalised: true },
  { what: 'slow body stalling beyond the timeout', mode: 'slow-body', delayMs: 4000, alone: ['504', '504'], mixed: ['good', '504'], penalised: true },
  // Larger answers, and answers of unknown length, are streamed: once their head went out, a cut is all that is left.
  { what: 'killed mid-body (content-length above 64 KiB)', mode: 'half-large', delayMs: 20, alone: ['cut', 'cut'], mixed: ['cut', 'cut'], penalised: false },
  { what: 'stalling mid-body beyond the timeout (content-length above 64 KiB)', mode: 'half-large', delayMs: 4000, alone: ['cut', 'cut'], mixed: ['cut', 'cut'], penalised: false },
  { what: 'killed mid-body (chunked)', mode: 'half-chunked', delayMs: 20, alone: ['cut', 'cut'], mixed: ['cut', 'cut'], penalised: false },
  { what: 'connection reset', mode: 'reset', delayMs: 0, alone: ['502', '502'], mixed: ['good', '502'], penalised: true },
  { what: 'connection closed without an answer', mode: 'close', delayMs: 0, alone: ['502', '502'], mixed: ['good', '502'], penalised: true },
  { what: 'garbage instead of HTTP', mode: 'garbage', delayMs: 0, alone: ['502', '502'], mixed: ['good', '502'], penalised: true },
  { what: 'a status outside 100-599', mode: 'bad-status', delayMs: 0, alone: ['502', '502'], mixed: ['good', '502'], penalised: true },
  { what: 'accepts and never answers', mode: 'silent', delayMs: 0, alone: ['504', '504'], mixed: ['good', '504'], penalised: true },
  { what: 'slow headers within the timeout', mode: 'slow-headers', delayMs: 10, alone: ['fault', 'fault'], mixed: ['fault', 'fault'], penalised: false },
  { what: 'slow headers beyond the timeout', mode: 'slow-headers', delayMs: 600, alone: ['504', '504'], mixed: ['good', '504'], penalised: true },
  { what: 'slow body within the timeout', mode: 'slow-body', delayMs: 10, alone: ['fault', 'fault'], mixed: ['fault', 'fault'], penalised: false }
]

test('every upstream fault: a documented answer, others served meanwhile, nothing left in flight or open', async (t) => {
  const before = resources()
  const fault = await new FaultServer('fault').start()
  const good = await new DemoUpstream('good').start()
  const gw = await startGateway({
    pools: {
      alone: { timeout: TIMEOUT, targets: [{ url: fault.url, id: 'fault' }] },
      mixed: {
        timeout: TIMEOUT,
        algorithm: 'consistent-hash',
        hashKey: { header: 'x-key' },
        targets: [{ url: fault.url, id: 'fault' }, { url: good.url, id: 'good' }]
      },
      other: { targets: [{ url: good.url, id: 'good' }] }
    }
  }, (app) => {
    for (const pool of ['alone', 'mixed', 'other']) app.all(`/${pool}/*`, { config: { upstream: pool } }, app.lb.forward)
  })
  const client = new Client()
  const pools = { alone: gw.app.lb.pool('alone'), mixed: gw.app.lb.pool('mixed'), other: gw.app.lb.pool('other') }

  // A key the ring maps to the faulty upstream: every mixed request tries it first, and a retry goes to the good one.
  let key = ''
  for (let i = 0; key === ''; i++) {
    if (pickFor(pools.mixed, { headers: { 'x-key': `k${i}` } })?.id === 'fault') key = `k${i}`
  }

  async function send (pool: 'alone' | 'mixed', method: 'GET' | 'POST'): Promise<Seen> {
    const res = await request(`${gw.url}/${pool}/x`, {
      dispatcher: client.agent,
      method,
      headers: { 'x-key': key, 'content-type': 'application/json' },
      body: method === 'POST' ? '{"order":1}' : undefined
    })
    let text: string
    try {
      text = await res.body.text()
    } catch {
      return res.statusCode === 200 ? 'cut' : `${res.statusCode} then cut` as Seen
    }
    const served = res.headers['x-served-by']
    // The body was read to the length its headers announced: a whole answer.
    if (res.statusCode === 200) return served === 'good' ? 'good' : served === 'fault' ? 'fault' : `200 ${text}` as Seen
    const body = JSON.parse(text) as { code?: string }
    const expected = res.statusCode === 504 ? 'FST_LB_GATEWAY_TIMEOUT' : 'FST_LB_BAD_GATEWAY'
    if (body.code !== expected || served !== undefined || text.includes(String(fault.port))) return `${res.statusCode} ${text}` as Seen
    return String(res.statusCode) as Seen
  }

  for (const c of cases) {
    await t.test(c.what, async (t) => {
      fault.mode = c.mode
      fault.delayMs = c.delayMs
      const failures = { alone: pools.alone.targets[0].failures, mixed: pools.mixed.get('fault')!.failures }
      const seen = Promise.all([send('alone', 'GET'), send('alone', 'POST'), send('mixed', 'GET'), send('mixed', 'POST')])
      // While the faulty upstream holds its requests, the gateway serves everyone else.
      const others = await Promise.all(Array.from({ length: 5 }, async () => (await client.send(`${gw.url}/other/y`)).status))
      t.same(others, [200, 200, 200, 200, 200], 'other requests are served meanwhile')
      const [aloneGet, alonePost, mixedGet, mixedPost] = await seen
      t.same({ alone: [aloneGet, alonePost], mixed: [mixedGet, mixedPost] }, { alone: c.alone, mixed: c.mixed }, 'what the clients see')
      await assertIdle(t, pools.alone, 'alone')
      await assertIdle(t, pools.mixed, 'mixed')
      await until(() => fault.connections === 0, 5000, 'the gateway to let go of the faulty upstream').catch(() => {})
      t.equal(fault.connections, 0, 'no connection to the faulty upstream stays open')
      const penalty = c.penalised ? 2 : 0
      t.equal(pools.alone.targets[0].failures - failures.alone, penalty, 'failures counted on the faulty upstream (alone)')
      t.equal(pools.mixed.get('fault')!.failures - failures.mixed, penalty, 'failures counted on the faulty upstream (mixed)')
      t.equal(pools.mixed.get('good')!.failures, 0, 'never on the healthy one')
      if (c.mode === 'silent') t.ok(pools.alone.targets[0].ewmaMs >= TIMEOUT, 'a timeout counts as the slowest answer')
    })
  }

  await client.close()
  await untilNoConnections(gw.app.server, 'the gateway')
  await gw.close()
  await fault.stop()
  await good.stop()
  await assertNoLeak(t, before, 'after every fault')
})
