import { test } from 'tap'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startUpstreams } from '../helpers/demo-upstream'
import { startTsChild } from '../helpers/child'
import { until } from '../helpers/gateway'

test('app.close() under load: requests in flight complete, new ones are refused, the process exits on its own', async (t) => {
  const ups = await startUpstreams(['a', 'b'])
  for (const u of ups) {
    u.mode = 'slow'
    u.delayMs = 500
  }
  const agent = new Agent({ connections: 100 })
  t.teardown(async () => { await agent.close(); for (const u of ups) await u.stop() })
  const gateway = startTsChild(t, join(__dirname, 'fixtures', 'close-under-load.ts'), {
    LB_CLOSE_UNDER_LOAD: '1',
    LB_UPSTREAMS: ups.map((u) => u.url).join(',')
  })
  const { port } = JSON.parse(await gateway.line()) as { port: number }
  const url = `http://127.0.0.1:${port}`

  const send = async (i: number, method: 'GET' | 'PUT' | 'POST'): Promise<string> => {
    try {
      const res = await request(`${url}/r/${i}`, { dispatcher: agent, method, body: method === 'GET' ? undefined : `{"n":${i}}`, headers: { 'content-type': 'application/json' } })
      const text = await res.body.text()
      return res.statusCode === 200 && (JSON.parse(text) as { url: string }).url === `/r/${i}` ? 'ok' : `${res.statusCode} ${text}`
    } catch (err) {
      return (err as { code?: string }).code ?? String(err)
    }
  }
  const methods = ['GET', 'GET', 'PUT', 'POST'] as const
  const inFlight = Array.from({ length: 60 }, async (_, i) => send(i, methods[i % 4]))
  await until(() => ups[0].active + ups[1].active === 60, 10_000, 'every request at an upstream')

  process.kill(gateway.child.pid!, 'SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 100))
  // While the gateway closes: a request is refused (503 from Fastify, or the connection), never left hanging.
  // The client keeps its connections open: the gateway must close them itself once their answers are sent.
  const late = await send(1000, 'GET')
  t.ok(/^503 |ECONNREFUSED|UND_ERR_SOCKET|ECONNRESET/.test(late), `a request after close() began: ${late}`)

  const answers = await Promise.all(inFlight)
  t.same(answers.filter((a) => a !== 'ok'), [], 'all 60 requests in flight completed with their own answer')
  const { code, killed } = await gateway.exited
  t.equal(killed, false, 'the process exited without being killed')
  t.equal(code, 0, gateway.stderr())
  const report = JSON.parse(await gateway.line().catch(() => '{}')) as { inFlightAtClose?: number, inFlightAfter?: number }
  t.ok((report.inFlightAtClose ?? 0) >= 60, `requests were in flight at close (${report.inFlightAtClose})`)
  t.equal(report.inFlightAfter, 0, 'nothing in flight once app.close() resolved')
})
