import { test, type Test } from 'tap'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import { Client, startGateway, until, type Answer } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import type { PoolOptions } from '../../lib/options/resolve'

function codeOf (answer: Answer): string | undefined {
  try {
    return (JSON.parse(answer.text) as { code?: string }).code
  } catch {
    return undefined
  }
}

/** Two held upstreams with a connection limit each, behind a gateway; the test releases their answers. */
async function limitedGateway (t: Test, pool: Omit<PoolOptions, 'targets'>, maxConnections: number) {
  const ups = await startUpstreams(['a', 'b'])
  const group = { active: 0, peak: 0 }
  for (const u of ups) {
    u.mode = 'hold'
    u.group = group
  }
  // The route's own preHandler runs right after the pick hook: in the order requests got their slot.
  const log: string[] = []
  const gw = await startGateway({
    pools: { main: { algorithm: 'round-robin', ...pool, targets: ups.map((u) => ({ url: u.url, id: u.id, maxConnections })) } }
  }, (app) => {
    app.all('/*', {
      config: { upstream: 'main' },
      preHandler: (request, _reply, done) => { log.push(request.url); done() }
    }, app.lb.forward)
  })
  const client = new Client(128)
  t.teardown(async () => {
    for (const u of ups) u.mode = 'ok'
    for (const u of ups) u.release()
    await client.close()
    await gw.close()
    for (const u of ups) await u.stop()
  })
  return { ups, gw, client, log, group, pool: gw.app.lb.pool('main') }
}

/** Answers whatever the upstreams hold, as requests arrive, until `done` holds and none is held. */
async function releaseUntil (ups: DemoUpstream[], done: () => boolean): Promise<void> {
  while (!done() || ups.some((u) => u.active > 0)) {
    for (const u of ups) u.release()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

test('maxConnections and a queue: 10 at the upstreams, 40 waiting in order, the rest refused at once', async (t) => {
  const { ups, gw, client, log, pool } = await limitedGateway(t, { queue: { size: 40, timeout: 60_000 } }, 5)
  const answers: Array<Promise<Answer>> = []
  const refused: Answer[] = []
  // One at a time, each seen by the gateway before the next: the order they arrive in is the order they are sent in.
  for (let i = 0; i < 100; i++) {
    const before = ups[0].active + ups[1].active + (pool.waiting?.length ?? 0) + pool.overloaded.queue_full
    answers.push(client.send(`${gw.url}/r/${i}`).then((answer) => {
      if (answer.status === 503) refused.push(answer)
      return answer
    }))
    await until(() => ups[0].active + ups[1].active + (pool.waiting?.length ?? 0) + pool.overloaded.queue_full === before + 1, 5000, `request ${i} to arrive`)
  }
  t.same([ups[0].active, ups[1].active], [5, 5], 'each upstream holds its limit')
  t.equal(pool.waiting?.length, 40, 'forty wait')
  await until(() => refused.length === 50, 5000, 'the refusals')
  t.equal(pool.overloaded.queue_full, 50, 'counted as a full queue')
  t.ok(refused.every((a) => codeOf(a) === 'FST_LB_OVERLOADED' && a.headers['retry-after'] === '5'), 'FST_LB_OVERLOADED with Retry-After')
  t.notOk(refused.some((a) => a.text.includes(String(ups[0].port)) || a.text.includes(String(ups[1].port))), 'no upstream address')

  await releaseUntil(ups, () => ups[0].hits + ups[1].hits === 50)
  const all = await Promise.all(answers)
  t.same(all.slice(0, 50).map((a) => a.status), Array(50).fill(200), 'the first 50 are served')
  t.same(log, Array.from({ length: 50 }, (_, i) => `/r/${i}`), 'the queued ones got their slots in the order they came')
  t.same([ups[0].peak, ups[1].peak], [5, 5], 'neither upstream ever held more than 5')
  t.equal(pool.waiting?.length, 0)
  await assertIdle(t, pool, 'after the queue drained')
})

test('100 concurrent clients: no upstream ever holds more than its maxConnections', async (t) => {
  const { ups, gw, client, pool } = await limitedGateway(t, { queue: { size: 100, timeout: 60_000 } }, 5)
  const all = Promise.all(Array.from({ length: 100 }, (_, i) => client.send(`${gw.url}/c/${i}`)))
  await until(() => ups[0].active + ups[1].active === 10 && pool.waiting?.length === 90, 5000, 'ten held, ninety waiting')
  await releaseUntil(ups, () => ups[0].hits + ups[1].hits === 100)
  const answers = await all
  t.same(answers.filter((a) => a.status !== 200), [], 'every one served')
  t.ok(ups[0].peak <= 5 && ups[1].peak <= 5, `peaks ${ups[0].peak} and ${ups[1].peak}`)
  await assertIdle(t, pool, 'after 100 concurrent clients')
})

test('a short queue timeout: the queued requests get 503 and never reach an upstream', async (t) => {
  const { ups, gw, client, pool } = await limitedGateway(t, { queue: { size: 10, timeout: 50 } }, 1)
  const held = [client.send(`${gw.url}/held/0`), client.send(`${gw.url}/held/1`)]
  await until(() => ups[0].active + ups[1].active === 2, 5000, 'both slots taken')
  const waited = await Promise.all([1, 2, 3].map(async (i) => await client.send(`${gw.url}/late/${i}`)))
  t.same(waited.map((a) => [a.status, codeOf(a)]), Array(3).fill([503, 'FST_LB_OVERLOADED']))
  t.equal(pool.overloaded.queue_timeout, 3, 'counted as queue timeouts')
  t.equal(ups[0].hits + ups[1].hits, 2, 'no upstream saw them')
  t.equal(pool.waiting?.length, 0)
  await releaseUntil(ups, () => ups[0].active + ups[1].active === 0)
  await Promise.all(held)
  await assertIdle(t, pool, 'after queue timeouts')
})

test('a queued client that leaves is taken out of the queue at once and leaves nothing behind', async (t) => {
  const { ups, gw, client, pool } = await limitedGateway(t, { queue: { size: 10, timeout: 60_000 } }, 1)
  const held = [client.send(`${gw.url}/held/0`), client.send(`${gw.url}/held/1`)]
  await until(() => ups[0].active + ups[1].active === 2, 5000, 'both slots taken')
  const controller = new AbortController()
  const leaving = client.send(`${gw.url}/leaving`, { signal: controller.signal }).catch(() => null)
  await until(() => pool.waiting?.length === 1, 5000, 'the request to wait')
  controller.abort()
  await leaving
  await until(() => pool.waiting?.length === 0, 5000, 'the queue to let it go')
  t.equal(pool.inFlight, 2, 'only the two held requests hold slots')
  await releaseUntil(ups, () => ups[0].active + ups[1].active === 0)
  await Promise.all(held)
  t.equal(ups[0].hits + ups[1].hits, 2, 'it never reached an upstream')
  await assertIdle(t, pool, 'after a queued client left')
})

test('without a queue, a request that finds every target full is refused at once', async (t) => {
  const { ups, gw, client, pool } = await limitedGateway(t, {}, 1)
  const held = [client.send(`${gw.url}/held/0`), client.send(`${gw.url}/held/1`)]
  await until(() => ups[0].active + ups[1].active === 2, 5000, 'both slots taken')
  const refused = await client.send(`${gw.url}/more`)
  t.equal(refused.status, 503)
  t.equal(codeOf(refused), 'FST_LB_OVERLOADED')
  t.equal(refused.headers['retry-after'], '5')
  t.equal(pool.overloaded.full, 1)
  t.equal(pool.noTarget, 0, 'a full pool is not a pool without targets')
  await releaseUntil(ups, () => ups[0].active + ups[1].active === 0)
  await Promise.all(held)
  await assertIdle(t, pool, 'after a refusal')
})

test('maxInFlight caps the pool as a whole', async (t) => {
  const { ups, gw, client, group, pool } = await limitedGateway(t, { maxInFlight: 3, queue: { size: 20, timeout: 60_000 } }, 0)
  const all = Promise.all(Array.from({ length: 12 }, (_, i) => client.send(`${gw.url}/m/${i}`)))
  await until(() => ups[0].active + ups[1].active === 3 && pool.waiting?.length === 9, 5000, 'three held, nine waiting')
  await releaseUntil(ups, () => ups[0].hits + ups[1].hits === 12)
  const answers = await all
  t.same(answers.map((a) => a.status), Array(12).fill(200))
  t.equal(group.peak, 3, 'the upstreams together never held more than 3')
  await assertIdle(t, pool, 'after maxInFlight')
})

test('a slot taken at the pick is freed when a later hook answers instead of the handler', async (t) => {
  const ups = await startUpstreams(['a'])
  const gw = await startGateway({ pools: { main: { targets: [{ url: ups[0].url, id: 'a', maxConnections: 1 }] } } }, (app) => {
    app.get('/guarded', {
      config: { upstream: 'main' },
      preHandler: async (_request, reply) => { await reply.code(401).send({ denied: true }) }
    }, app.lb.forward)
    app.get('/open', { config: { upstream: 'main' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await ups[0].stop() })
  const pool = gw.app.lb.pool('main')
  for (let i = 0; i < 3; i++) t.equal((await client.send(`${gw.url}/guarded`)).status, 401)
  await assertIdle(t, pool, 'after refusals by a later hook')
  t.equal((await client.send(`${gw.url}/open`)).servedBy, 'a', 'the slot is free for the next request')
  t.equal(ups[0].hits, 1)
})

test('affinity: a pinned client whose target is full moves, unless strict, which answers 503 FST_LB_OVERLOADED', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  const secret = 'a-secret-of-at-least-thirty-two-characters!'
  const targets = ups.map((u) => ({ url: u.url, id: u.id, maxConnections: 1 }))
  const gw = await startGateway({
    pools: {
      loose: { algorithm: 'round-robin', targets, affinity: { secret } },
      strict: { algorithm: 'round-robin', targets, affinity: { secret, strict: true } }
    }
  }, (app) => {
    app.get('/loose/*', { config: { upstream: 'loose' } }, app.lb.forward)
    app.get('/strict/*', { config: { upstream: 'strict' } }, app.lb.forward)
  })
  const client = new Client()
  t.teardown(async () => { for (const u of ups) { u.mode = 'ok'; u.release() } await client.close(); await gw.close(); for (const u of ups) await u.stop() })
  for (const name of ['loose', 'strict']) {
    const first = await client.send(`${gw.url}/${name}/pin`)
    t.equal(first.servedBy, 'a')
    const cookie = String(first.headers['set-cookie']).split(';')[0]
    ups[0].mode = 'hold'
    const held = client.send(`${gw.url}/${name}/held`, { headers: { cookie } })
    await until(() => ups[0].active === 1, 5000, 'a to be full')
    const next = await client.send(`${gw.url}/${name}/next`, { headers: { cookie } })
    if (name === 'loose') t.equal(next.servedBy, 'b', 'the loose pool moves the client to a target with room')
    else t.same([next.status, codeOf(next)], [503, 'FST_LB_OVERLOADED'], 'the strict pool keeps it pinned and says why')
    ups[0].mode = 'ok'
    ups[0].release()
    t.equal((await held).servedBy, 'a')
    await assertIdle(t, gw.app.lb.pool(name), `${name} affinity`)
  }
})
