import { test } from 'tap'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import type { Pool } from '../../lib/pool/pool'
import { Client, refusedUrl, startGateway, until } from '../helpers/gateway'

function targetsOf (ups: DemoUpstream[]): Array<{ url: string, id: string }> {
  return ups.map((u) => ({ url: u.url, id: u.id }))
}

/** Hits of each upstream caused by running fn. */
async function hitsDuring (ups: DemoUpstream[], fn: () => Promise<unknown>): Promise<number[]> {
  const before = ups.map((u) => u.hits)
  await fn()
  return ups.map((u, i) => u.hits - before[i])
}

function countRetries (pool: Pool): { n: number } {
  const retries = { n: 0 }
  pool.on('retry', () => { retries.n++ })
  return retries
}

test('an idempotent request answered 503 is retried on another target', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].status = 503
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: targetsOf(ups) } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) {
    const answers: Array<[number, string | undefined]> = []
    const hits = await hitsDuring(ups, async () => {
      for (let i = 0; i < 2; i++) {
        const body = method === 'PUT' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}
        const res = await client.send(gw.url + '/x', { method, ...body })
        answers.push([res.status, res.servedBy])
      }
    })
    t.same(answers, [[200, 'b'], [200, 'b']], `${method}: both answered by b`)
    t.same(hits, [2, 2], `${method}: each request tried a once, then b`)
  }
  t.equal(gw.app.lb.pool('main').inFlight, 0)
})

test('every retry goes to a target not yet tried on that request', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c', 'd'])
  for (const u of ups) u.status = 503
  const gw = await startGateway({
    pools: {
      two: { targets: targetsOf(ups), retry: { attempts: 2 } },
      many: { algorithm: 'round-robin', targets: targetsOf(ups), retry: { attempts: 9 } }
    }
  }, (app) => {
    app.get('/two', { config: { upstream: 'two' } }, app.lb.forward)
    app.get('/many', { config: { upstream: 'many' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  for (let i = 0; i < 4; i++) {
    let status = 0
    const hits = await hitsDuring(ups, async () => { status = (await client.send(gw.url + '/two')).status })
    t.equal(status, 503, 'the last answer reaches the client')
    t.ok(hits.every((h) => h <= 1), `no target twice (${hits.join(',')})`)
    t.equal(hits.reduce((a, b) => a + b, 0), 3, 'the first try and 2 retries')
  }
  const hits = await hitsDuring(ups, async () => client.send(gw.url + '/many'))
  t.same(hits, [1, 1, 1, 1], 'with more attempts than targets, each target once and no more')
})

test('POST and PATCH that reached an upstream are never retried; a refused connection is', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].status = 503
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', timeout: 100, targets: targetsOf(ups) } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pool = gw.app.lb.pool('main')
  const retries = countRetries(pool)
  for (const method of ['POST', 'PATCH']) {
    const answers: Array<[number, string | undefined]> = []
    const hits = await hitsDuring(ups, async () => {
      for (let i = 0; i < 2; i++) {
        const res = await client.send(gw.url + '/orders', { method, body: '{"n":1}', headers: { 'content-type': 'application/json' } })
        answers.push([res.status, res.servedBy])
      }
    })
    t.same(answers, [[503, 'a'], [200, 'b']], `${method}: a's 503 reached the client`)
    t.same(hits, [1, 1], `${method}: nothing was sent twice`)
  }
  ups[0].status = null
  ups[0].mode = 'hang'
  const hits = await hitsDuring(ups, async () => {
    const res = await client.send(gw.url + '/orders', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    t.equal(res.status, 504, 'a POST that timed out is not sent elsewhere')
  })
  t.same(hits, [1, 0])
  t.equal(retries.n, 0)

  await ups[0].stop()
  const res = await client.send(gw.url + '/orders', { method: 'POST', body: '{"n":2}', headers: { 'content-type': 'application/json' } })
  t.equal(res.status, 200, 'a refused connection sent nothing: the POST goes to b')
  t.equal(JSON.parse(res.text).body, '{"n":2}')
  t.equal(pool.inFlight, 0)
})

test('a GET cut off by an upstream that stops is retried on another target', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  ups[0].mode = 'slow'
  ups[0].delayMs = 5000
  const gw = await startGateway({ pools: { main: { algorithm: 'round-robin', targets: targetsOf(ups) } } })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const pending = client.send(gw.url + '/x')
  await until(() => ups[0].active === 1, 5000, 'the request to reach a')
  await ups[0].stop()
  const res = await pending
  t.equal(res.status, 200)
  t.equal(res.servedBy, 'b')
})

test('retry: false still fails over refused connections but passes a 503 on', async (t) => {
  const ups = await startUpstreams(['a', 'c'])
  ups[0].status = 503
  const dead = await refusedUrl()
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', retry: false, targets: [...targetsOf(ups), { url: dead, id: 'b' }] } }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const answers: Array<[number, string | undefined]> = []
  for (let i = 0; i < 2; i++) {
    const res = await client.send(gw.url + '/x')
    answers.push([res.status, res.servedBy])
  }
  t.same(answers, [[503, 'a'], [200, 'c']], "a's 503 passed on; b refused and the request went on to c")
})

test('the retry budget caps retries when every upstream fails', async (t) => {
  const ups = await startUpstreams(['a', 'b', 'c'])
  for (const u of ups) {
    u.mode = 'slow'
    u.delayMs = 100
    u.status = 503
  }
  const gw = await startGateway({
    pools: {
      budgeted: { targets: targetsOf(ups), retry: { attempts: 2, budgetPercent: 0.1, minRetriesPerSecond: 0 } },
      unbounded: { targets: targetsOf(ups), retry: { attempts: 2, budgetPercent: 1, minRetriesPerSecond: 1000 } }
    }
  }, (app) => {
    app.get('/budgeted', { config: { upstream: 'budgeted' } }, app.lb.forward)
    app.get('/unbounded', { config: { upstream: 'unbounded' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  const burst = async (path: string): Promise<{ statuses: number[], retries: number }> => {
    const pool = gw.app.lb.pool(path)
    const retries = countRetries(pool)
    const answers = await Promise.all(Array.from({ length: 20 }, async () => client.send(`${gw.url}/${path}`)))
    await until(() => pool.inFlight === 0, 5000, 'every try released')
    t.equal(pool.activeRetries, 0, `${path}: no retry left counted`)
    return { statuses: [...new Set(answers.map((a) => a.status))], retries: retries.n }
  }
  const unbounded = await burst('unbounded')
  t.same(unbounded, { statuses: [503], retries: 40 }, 'without a budget: 20 requests x 2 retries')
  const budgeted = await burst('budgeted')
  t.same(budgeted.statuses, [503], 'every client still gets an answer')
  // 20 requests at 10% buy exactly 2 retries, and the reserve is off.
  t.equal(budgeted.retries, 2, 'the budget allowed 2 retries, not 40')
})
