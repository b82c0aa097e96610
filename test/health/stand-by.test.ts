import { test } from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startGateway } from '../helpers/gateway'

test('a registry that stands by stops checking, drops the check in flight, and checks again when it leads', async (t) => {
  // An upstream whose health answers wait while `hold` is set: a check stays in flight as long as the test needs.
  const held: ServerResponse[] = []
  let hold = false
  const upstream = createServer((req, res) => {
    if (hold) held.push(res)
    else res.end('ok')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => { upstream.closeAllConnections(); upstream.close() })
  const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const gw = await startGateway({ pools: { main: { targets: [{ url, id: 'a' }], healthCheck: { path: '/health', interval: 50, jitter: 0, timeout: 5000 } } } })
  t.teardown(gw.close)
  const health = gw.app.lb.health
  const checks: boolean[] = []
  health.on('check', (event) => checks.push(event.ok))
  await new Promise<void>((resolve) => health.once('check', () => resolve()))

  // A check under way when another process takes the checks over: it is dropped, not reported as this one's.
  hold = true
  await new Promise<void>((resolve) => { const poll = setInterval(() => { if (held.length > 0) { clearInterval(poll); resolve() } }, 5) })
  const reported = checks.length
  health.standBy()
  t.notOk(health.checking, 'it no longer checks')
  t.same(health.states().map(([, s]) => s.healthy), [true], 'its state stays as the last check left it, for a hub it may come to hold')
  for (const res of held.splice(0)) res.end('ok')

  hold = false
  health.lead()
  t.ok(health.checking, 'it checks again')
  await new Promise<void>((resolve) => health.once('check', () => resolve()))
  t.equal(checks.length, reported + 1, 'the next check reported is a new one: the one dropped at standBy never is')
  t.equal(checks.at(-1), true, 'and it passes')
})
