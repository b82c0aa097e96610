import { test, type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { startUpstreams } from '../helpers/demo-upstream'
import { Client, refusedUrl, sequence, startGateway, until } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import type { LbOptions } from '../../lib/options/resolve'
import type { UnavailableReason } from '../../lib/forward/fallback-options'

async function gatewayWith (t: Test, options: LbOptions, routes?: (app: FastifyInstance) => void) {
  const gw = await startGateway(options, routes)
  const client = new Client()
  t.teardown(async () => { await client.close(); await gw.close() })
  return { gw, client }
}

test('a static answer stands in for every reason by default: no target here', async (t) => {
  const { gw, client } = await gatewayWith(t, {
    pools: { main: { targets: [], fallback: { status: 200, headers: { 'x-fallback': 'static' }, body: { items: [] } } } }
  })
  const res = await client.send(gw.url + '/list')
  t.equal(res.status, 200)
  t.equal(res.headers['x-fallback'], 'static')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.same(JSON.parse(res.text), { items: [] })
  const pool = gw.app.lb.pool('main')
  t.equal(pool.fallbacks.no_target, 1, 'counted by reason')
  t.equal(pool.noTarget, 1, 'and still a request without a target')
})

test('a fallback pool serves when every try of the pool failed, and when it has no target', async (t) => {
  const ups = await startUpstreams(['spare'])
  t.teardown(async () => { await ups[0].stop() })
  const refused = await refusedUrl()
  const { gw, client } = await gatewayWith(t, {
    pools: {
      main: { targets: [{ url: refused, id: 'gone' }], fallback: 'spare' },
      empty: { targets: [], fallback: { to: 'spare', on: ['no_target'] } },
      spare: { targets: [{ url: ups[0].url, id: 'spare' }] }
    }
  }, (app) => {
    app.all('/main/*', { config: { upstream: 'main' } }, app.lb.forward)
    app.all('/empty/*', { config: { upstream: 'empty' } }, app.lb.forward)
  })
  const failed = await client.send(gw.url + '/main/x', { method: 'POST', body: 'payload' })
  t.equal(failed.status, 200)
  t.equal(failed.servedBy, 'spare', 'the request went on to the fallback pool')
  t.match(failed.text, /"body":"payload"/, 'with its body')
  t.equal(gw.app.lb.pool('main').fallbacks.failed, 1)
  const empty = await client.send(gw.url + '/empty/y')
  t.equal(empty.servedBy, 'spare')
  t.equal(gw.app.lb.pool('empty').fallbacks.no_target, 1)
  for (const name of ['main', 'empty', 'spare']) await assertIdle(t, gw.app.lb.pool(name), `pool ${name}`)
})

test('a handler gets the reason and answers; `on` narrows the reasons it is used for', async (t) => {
  const ups = await startUpstreams(['a'])
  ups[0].mode = 'hold'
  t.teardown(async () => { ups[0].release(); await ups[0].stop() })
  const reasons: UnavailableReason[] = []
  const { gw, client } = await gatewayWith(t, {
    pools: {
      main: {
        targets: [{ url: ups[0].url, id: 'a', maxConnections: 1 }],
        fallback: {
          to: async (_request, reply, reason) => { reasons.push(reason); return await reply.code(429).send({ busy: true }) },
          on: ['overloaded']
        }
      },
      none: { targets: [], fallback: { to: () => { throw new Error('never used') }, on: ['overloaded'] } }
    }
  }, (app) => {
    app.all('/main/*', { config: { upstream: 'main' } }, app.lb.forward)
    app.all('/none/*', { config: { upstream: 'none' } }, app.lb.forward)
  })
  const held = client.send(gw.url + '/main/held')
  await until(() => ups[0].active === 1, 5000, 'the slot to be taken')
  const busy = await client.send(gw.url + '/main/more')
  t.equal(busy.status, 429)
  t.same(reasons, ['overloaded'])
  const none = await client.send(gw.url + '/none/x')
  t.equal(none.status, 503, 'no target is not among its reasons: the gateway answers')
  t.equal(JSON.parse(none.text).code, 'FST_LB_NO_TARGET')
  ups[0].release()
  t.equal((await held).status, 200)
  await assertIdle(t, gw.app.lb.pool('main'), 'after a handler answered')
})

test('a handler that throws leaves the answer to the error handler', async (t) => {
  const { gw, client } = await gatewayWith(t, {
    pools: { main: { targets: [], fallback: () => { throw Object.assign(new Error('teapot'), { statusCode: 418 }) } } }
  })
  const res = await client.send(gw.url + '/x')
  t.equal(res.status, 418)
})

test('without a fallback, the gateway answers go through setErrorHandler', async (t) => {
  const refused = await refusedUrl()
  const { gw, client } = await gatewayWith(t, {
    pools: { main: { targets: [] }, dead: { targets: [{ url: refused, id: 'gone' }] } }
  }, (app) => {
    app.setErrorHandler(async (err: Error & { code?: string, statusCode?: number }, _request, reply) => {
      return await reply.code(err.statusCode ?? 500).send({ shaped: true, code: err.code })
    })
    app.all('/main/*', { config: { upstream: 'main' } }, app.lb.forward)
    app.all('/dead/*', { config: { upstream: 'dead' } }, app.lb.forward)
  })
  const none = await client.send(gw.url + '/main/x')
  t.equal(none.status, 503)
  t.same(JSON.parse(none.text), { shaped: true, code: 'FST_LB_NO_TARGET' })
  const dead = await client.send(gw.url + '/dead/x')
  t.equal(dead.status, 502)
  t.same(JSON.parse(dead.text), { shaped: true, code: 'FST_LB_BAD_GATEWAY' })
})

test('bad fallbacks fail at startup naming the pool, the field and the value', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['nowhere', /pool "main": fallback = "nowhere" \(names no pool of the plugin options\)/],
    ['main', /pool "main": fallback = "main" \(names the pool itself\)/],
    [42, /fallback = 42 \(must be a pool name/],
    [{ status: 99 }, /fallback.status = 99 \(must be an integer from 200 to 599\)/],
    [{ status: 200, body: 3 }, /fallback.body = 3 \(must be a string, a Buffer, an object or an array\)/],
    [{ status: 200, headers: { 'bad header': 'x' } }, /fallback.headers.bad header = "bad header" \(is not a header name\)/],
    [{ to: 'spare', on: [] }, /fallback.on = \[\] \(must name at least one reason\)/],
    [{ to: 'spare', on: ['later'] }, /fallback.on\[0\] = "later" \(must be one of/],
    [{ to: 'spare', when: [] }, /fallback.when = \[\] \(is not a fallback option\)/]
  ]
  for (const [fallback, message] of cases) {
    await t.rejects(startGateway({ pools: { main: { targets: [], fallback } as never, spare: { targets: [] } } }), { code: 'FST_LB_INVALID_OPTION', message })
  }
})

test('an open circuit is served by the fallback, counted as circuit_open', async (t) => {
  const ups = await startUpstreams(['a'])
  ups[0].mode = 'error'
  t.teardown(async () => { await ups[0].stop() })
  const { gw, client } = await gatewayWith(t, {
    pools: {
      main: {
        targets: [{ url: ups[0].url, id: 'a' }],
        retry: false,
        circuitBreaker: { failureRatio: 0.5, minRequests: 2, openFor: 60_000 },
        fallback: { to: { status: 200, body: 'from the fallback' }, on: ['circuit_open'] }
      }
    }
  })
  const pool = gw.app.lb.pool('main')
  t.same((await sequence(client, gw.url + '/x', 2)), ['a', 'a'], 'two failures open it')
  const res = await client.send(gw.url + '/x')
  t.equal(res.text, 'from the fallback')
  t.equal(ups[0].hits, 2, 'the open circuit kept the request from the upstream')
  t.equal(pool.fallbacks.circuit_open, 1)
})
