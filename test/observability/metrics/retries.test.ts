import { test, type Test } from 'tap'
import { DemoUpstream } from '../../helpers/demo-upstream'
import type { PoolOptions } from '../../../lib/options/resolve'
import { FaultServer } from '../../helpers/fault-server'
import { Client, refusedUrl, startGateway } from '../../helpers/gateway'
import { byLabel } from '../../helpers/prom-text'

type Counts = Record<'attempted' | 'succeeded' | 'budget_exhausted' | 'limit_exceeded' | 'deadline_exceeded', number>

const NONE: Counts = { attempted: 0, succeeded: 0, budget_exhausted: 0, limit_exceeded: 0, deadline_exceeded: 0 }
/** A budget that refuses every retry of a request that reached an upstream. */
const NO_BUDGET = { budgetPercent: 0, minRetriesPerSecond: 0 }

interface Upstream {
  id: string
  url: string
  stop: () => Promise<void>
}

interface Setup {
  /** Sends a request to pool `pool`; answers with who served it, or the status when the gateway did. */
  send: (pool: string, method?: 'GET' | 'POST') => Promise<string>
  /** lb_retries_total of pool `pool`, by result, as /metrics shows it. */
  retries: (pool: string) => Promise<Record<string, number>>
}

/**
 * A real gateway with round-robin pools over the given targets (in id order),
 * each served at `/<pool>/*`; everything is stopped when the test ends.
 */
async function setup (t: Test, ups: Upstream[], pools: Record<string, { targets: Array<{ url: string, id: string }>, retry?: PoolOptions['retry'] }>): Promise<Setup> {
  const options: Record<string, PoolOptions> = {}
  for (const [name, pool] of Object.entries(pools)) options[name] = { algorithm: 'round-robin', ...pool }
  const gw = await startGateway({ pools: options }, (app) => {
    for (const name of Object.keys(pools)) app.all(`/${name}/*`, { config: { upstream: name } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => {
    await client.close()
    await gw.close()
    await Promise.all(ups.map(async (u) => u.stop()))
  })
  return {
    send: async (pool, method = 'GET') => {
      const body = method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}
      const res = await client.send(`${gw.url}/${pool}/x`, { method, ...body })
      return res.servedBy === undefined ? String(res.status) : `${res.servedBy} ${res.status}`
    },
    retries: async (pool) => {
      const res = await client.send(gw.url + '/metrics')
      return byLabel(res.text, 'lb_retries_total', 'result', { pool })
    }
  }
}

async function demo (id: string, status: number | null = null): Promise<DemoUpstream> {
  const up = await new DemoUpstream(id).start(0)
  up.status = status
  return up
}

function target (up: Upstream): { url: string, id: string } {
  return { url: up.url, id: up.id }
}

test('a request retried after a 503 or a reset and then answered counts as attempted and succeeded; a POST is not retried', async (t) => {
  const a = await demo('a', 503)
  const reset = await new FaultServer('a', 'reset').start()
  const b = await demo('b')
  const { send, retries } = await setup(t, [a, reset, b], {
    main: { targets: [target(a), target(b)] },
    reset: { targets: [target(reset), target(b)] }
  })
  t.same(await retries('main'), NONE, 'every result has its series, at 0, before any request')
  t.same(await retries('reset'), NONE)

  // Round robin starts each request at a (the retry moves the rotation on to b, and back to a).
  t.same([await send('main'), await send('main'), await send('main')], ['b 200', 'b 200', 'b 200'])
  t.same(await retries('main'), { ...NONE, attempted: 3, succeeded: 3 })
  t.equal(a.hits, 3, 'each request tried a first')
  t.equal(await send('main', 'POST'), 'a 503', 'a POST is never sent twice')
  t.same(await retries('main'), { ...NONE, attempted: 3, succeeded: 3 }, 'nothing counted for it')

  // Both answer 503: the retry happens, but its answer is one retries are for.
  b.status = 503
  t.equal(await send('main'), 'a 503', 'the POST moved the rotation on: b first, then a')
  t.same(await retries('main'), { ...NONE, attempted: 4, succeeded: 3 }, 'attempted, not succeeded; nowhere left to go is no limit')

  // A reset is a failure of a sent request: retried under the same rules as a 503.
  b.status = null
  t.equal(await send('reset'), 'b 200')
  t.equal(await send('reset', 'POST'), '502', 'a POST whose connection was reset is not retried')
  t.same(await retries('reset'), { ...NONE, attempted: 1, succeeded: 1 })
  t.equal(reset.requests, 2)
})

test('connect failures fail over for every method, budget or not; succeeded means an answer retries are not for', async (t) => {
  const b = await demo('b')
  const dead = { id: 'a', url: await refusedUrl(), stop: async () => {} }
  const { send, retries } = await setup(t, [b], {
    main: { targets: [target(dead), target(b)] },
    poor: { targets: [target(dead), target(b)], retry: NO_BUDGET }
  })
  t.equal(await send('main'), 'b 200')
  t.equal(await send('main', 'POST'), 'b 200', 'nothing was sent to a, so a POST goes on too')
  t.same(await retries('main'), { ...NONE, attempted: 2, succeeded: 2 })
  t.equal(await send('poor'), 'b 200', 'a refused connection costs no budget')
  t.same(await retries('poor'), { ...NONE, attempted: 1, succeeded: 1 })

  b.status = 503
  t.equal(await send('main', 'POST'), 'b 503')
  t.same(await retries('main'), { ...NONE, attempted: 3, succeeded: 2 }, 'a 503 passed on is no success')
  b.status = null
  b.mode = 'error'
  t.equal(await send('main'), 'b 500')
  t.same(await retries('main'), { ...NONE, attempted: 4, succeeded: 3 }, 'a 500, not in retry.statuses, ends the retries: it counts as succeeded')
})

test('a retry the budget refuses counts as budget_exhausted, and only when another target was there to take it', async (t) => {
  const a = await demo('a', 503)
  const reset = await new FaultServer('a', 'reset').start()
  const b = await demo('b')
  const { send, retries } = await setup(t, [a, reset, b], {
    poor: { targets: [target(a), target(b)], retry: NO_BUDGET },
    reset: { targets: [target(reset), target(b)], retry: NO_BUDGET },
    alone: { targets: [target(a)], retry: NO_BUDGET }
  })
  t.same([await send('poor'), await send('poor')], ['a 503', 'a 503'], 'no retry: the client gets the 503')
  t.same(await retries('poor'), { ...NONE, budget_exhausted: 2 })
  t.equal(b.hits, 0, 'b never tried')
  t.equal(await send('poor', 'POST'), 'a 503')
  t.same(await retries('poor'), { ...NONE, budget_exhausted: 2 }, 'a POST wants no retry, so none was refused')
  t.equal(await send('reset'), '502')
  t.same(await retries('reset'), { ...NONE, budget_exhausted: 1 }, 'a reset is refused the same way')
  t.equal(await send('alone'), 'a 503')
  t.same(await retries('alone'), NONE, 'with nowhere to go the budget is not asked')
})

test('a retry wanted after retry.attempts were used up counts as limit_exceeded', async (t) => {
  const a = await demo('a', 503)
  const b = await demo('b', 503)
  const c = await demo('c')
  const targets = [target(a), target(b), target(c)]
  const { send, retries } = await setup(t, [a, b, c], {
    one: { targets, retry: { attempts: 1 } },
    two: { targets },
    off: { targets, retry: false }
  })
  t.equal(await send('one'), 'b 503', 'a, then b, then no attempt left for c')
  t.same(await retries('one'), { ...NONE, attempted: 1, limit_exceeded: 1 })
  t.equal(await send('two'), 'c 200', 'with two attempts c answers')
  t.same(await retries('two'), { ...NONE, attempted: 2, succeeded: 1 })
  t.equal(await send('off'), 'a 503')
  t.same(await retries('off'), NONE, 'retry: false wants no retry: no limit was hit')
})
