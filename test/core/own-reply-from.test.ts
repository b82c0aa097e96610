import { test } from 'tap'
import Fastify from 'fastify'
import replyFrom from '@fastify/reply-from'
import type { AddressInfo } from 'node:net'
import { startUpstreams } from '../helpers/demo-upstream'
import lb from '../../lib/index'
import { FaultServer } from '../helpers/fault-server'
import { Client, refusedUrl } from '../helpers/gateway'

test('a gateway that registered reply-from itself: the plugin forwards through it, with failover and exact counts', async (t) => {
  const [up] = await startUpstreams(['a'])
  const fault = await new FaultServer('fault', 'head-only').start()
  const refused = await refusedUrl()
  const app = Fastify({ logger: false })
  // The gateway's own reply-from, with its own HTTP client: the plugin uses it rather than register another.
  await app.register(replyFrom)
  await app.register(lb, {
    pools: {
      main: { algorithm: 'round-robin', targets: [{ url: refused, id: 'down' }, { url: up.url, id: 'a' }] },
      faulty: { targets: [{ url: fault.url, id: 'fault' }] }
    }
  })
  app.all('/faulty/*', { config: { upstream: 'faulty' } }, app.lb.forward)
  app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  app.get('/unrouted', app.lb.forward)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const client = new Client()
  t.teardown(async () => { await client.close(); await app.close(); await up.stop(); await fault.stop() })
  const main = app.lb.pool('main')

  // Round robin starts with the refused target: the first request and the third fail over to a.
  const answers = []
  for (const method of ['GET', 'GET', 'POST']) {
    const res = await client.send(url + '/x', method === 'POST' ? { method, headers: { 'content-type': 'application/json' }, body: '{"order":1}' } : { method })
    answers.push(`${method} ${res.status} ${String(res.servedBy)}`)
  }
  t.same(answers, ['GET 200 a', 'GET 200 a', 'POST 200 a'], 'a refused connection is told from its cause: even a POST goes on')
  t.equal(main.get('down')!.failures, 2, 'both refusals counted')
  t.same([main.inFlight, main.get('a')!.inFlight], [0, 0], 'every try released when its answer was passed on')

  // The answer's head came, then the connection was cut: the gateway's own 502, without the upstream's headers.
  const cut = await client.send(url + '/faulty/x')
  t.equal(cut.status, 502)
  t.equal(JSON.parse(cut.text).code, 'FST_LB_BAD_GATEWAY')
  t.equal(cut.headers['x-served-by'], undefined)
  t.equal(app.lb.pool('faulty').inFlight, 0)

  // app.lb.forward on a route without an upstream guesses no destination.
  const unrouted = await client.send(url + '/unrouted')
  t.same([unrouted.status, JSON.parse(unrouted.text).code, JSON.parse(unrouted.text).message], [503, 'FST_LB_NO_TARGET', 'This route has no upstream pool'])
})
