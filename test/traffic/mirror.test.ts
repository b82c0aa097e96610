import { test } from 'tap'
import { randomBytes } from 'node:crypto'
import { DemoUpstream } from '../helpers/demo-upstream'
import { Client, refusedUrl, startGateway, until } from '../helpers/gateway'
import { assertIdle, assertNoLeak, resources } from '../helpers/leaks'
import { RecordingUpstream } from '../helpers/recorder'
import { sampleValue } from '../helpers/prom-text'

test('a mirror pool receives percent of the requests with the same method, path, query and body, marked', async (t) => {
  const main = await new RecordingUpstream('main').start()
  const shadow = await new RecordingUpstream('shadow').start()
  const gw = await startGateway({
    pools: {
      main: { targets: [main.url], mirror: { pool: 'shadow', percent: 25, header: 'x-shadow' } },
      shadow: { targets: [shadow.url + '/copy'] }
    }
  })
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close(); await main.stop(); await shadow.stop() })

  const bodies: Buffer[] = []
  for (let i = 0; i < 100; i++) {
    const body = randomBytes(1 + i * 37).toString('base64')
    bodies.push(Buffer.from(body))
    const res = await client.send(gw.url + `/orders/${i}?q=${i}`, { method: i % 2 === 0 ? 'POST' : 'PUT', body, headers: { 'content-type': 'application/octet-stream' } })
    t.equal(res.servedBy, 'main')
  }
  const pool = gw.app.lb.pool('main')
  await until(() => gw.app.lb.pool('shadow').inFlight === 0 && shadow.received.length === pool.mirrored?.answered, 5000, 'the copies')
  // An even spread, not a coin: 25 ± 1 of any 100 requests in a row.
  t.ok(Math.abs(shadow.received.length - 25) <= 1, `${shadow.received.length} of 100 requests were copied (25 ± 1)`)
  for (const copy of shadow.received) {
    const i = Number(/\/orders\/(\d+)\?q=\d+$/.exec(copy.url)?.[1])
    const original = main.received[i]
    t.equal(copy.url, `/copy${original.url}`, `copy of ${i}: the path and query below the mirror target's base path`)
    t.equal(copy.method, original.method)
    t.ok(copy.body.equals(bodies[i]) && original.body.equals(bodies[i]), `copy of ${i}: the body byte for byte`)
    t.equal(copy.headers['x-shadow'], '1', 'marked with the header')
    t.equal(original.headers['x-shadow'], undefined, 'the original is not marked')
  }
  const metrics = await (await fetch(gw.url + '/metrics')).text()
  t.equal(sampleValue(metrics, 'lb_mirror_total', { pool: 'main', result: 'answered' }), shadow.received.length)
  t.equal(sampleValue(metrics, 'lb_requests_total', { pool: 'shadow', target: gw.app.lb.pool('shadow').targets[0].id, code_class: '2xx' }), shadow.received.length,
    'the mirror pool counts the copies as its own')
  await assertIdle(t, gw.app.lb.pool('shadow'), 'after the copies')
})

test('a mirror that hangs or refuses changes no answer and leaks nothing; a body over maxBody is not copied', async (t) => {
  const main = await new DemoUpstream('main').start()
  const hanging = await new DemoUpstream('hang').start()
  hanging.mode = 'hang'
  const refused = await refusedUrl()
  t.teardown(async () => { await main.stop(); await hanging.stop() })
  const before = resources()
  const gw = await startGateway({
    pools: {
      hangs: { targets: [main.url], mirror: { pool: 'sink', timeout: 2000 } },
      refuses: { targets: [main.url], mirror: { pool: 'gone', maxBody: 10 } },
      sink: { targets: [hanging.url] },
      gone: { targets: [refused] }
    }
  }, (app) => {
    app.all('/h/*', { config: { upstream: 'hangs' } }, app.lb.forward)
    app.all('/r/*', { config: { upstream: 'refuses' } }, app.lb.forward)
  })
  const client = new Client()

  for (const prefix of ['/h', '/r']) {
    const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => await client.send(gw.url + `${prefix}/x${i}`)))
    t.same(answers.map((a) => [a.status, a.servedBy]), answers.map(() => [200, 'main']), `${prefix}: every client answer as without a mirror`)
    if (prefix === '/h') {
      const copies = gw.app.lb.pool('hangs').mirrored
      t.same([copies?.answered, copies?.timeout, gw.app.lb.pool('sink').inFlight], [0, 0, 20], 'the answers came while every copy still hung: none waited for one')
    }
  }
  const big = await client.send(gw.url + '/r/big', { method: 'POST', body: 'more than ten bytes' })
  t.equal(big.status, 200)
  const hangs = gw.app.lb.pool('hangs')
  const refuses = gw.app.lb.pool('refuses')
  await until(() => hangs.mirrored?.timeout === 20 && refuses.mirrored?.failed === 20, 5000, 'the copies to end')
  t.same(hangs.mirrored, { answered: 0, failed: 0, timeout: 20, skipped: 0 }, 'copies to a hanging pool time out')
  t.same(refuses.mirrored, { answered: 0, failed: 20, timeout: 0, skipped: 1 }, 'copies to a refusing pool fail; the large body was skipped')
  for (const name of ['hangs', 'refuses', 'sink', 'gone']) await assertIdle(t, gw.app.lb.pool(name), name)
  await client.close()
  await gw.close()
  await assertNoLeak(t, before, 'a gateway whose mirrors hung and were refused')
})

test('a mirror naming no pool, or its own, fails at ready', async (t) => {
  for (const [pool, why] of [['nope', 'names no pool'], ['main', 'names the pool itself']]) {
    await t.rejects(startGateway({ pools: { main: { targets: ['http://127.0.0.1:9'], mirror: { pool } } } }),
      { code: 'FST_LB_INVALID_OPTION', message: new RegExp(`pool "main": mirror.pool = "${pool}" \\(${why}`) })
  }
  await t.rejects(startGateway({ pools: { main: { targets: ['http://127.0.0.1:9'], mirror: { pool: 'x', percent: 101 } } } }),
    { message: /mirror\.percent = 101/ })
})
