import { test } from 'tap'
import type { AddressInfo } from 'node:net'
import { DemoUpstream } from '../helpers/demo-upstream'
import { startGateway } from '../helpers/gateway'
import { assertIdle } from '../helpers/leaks'
import { rawRequest } from '../helpers/raw-http'

// Absolute-form targets, '//host' paths and '@' are covered in test/core/plugin.test.ts; these are the other ways in.

test('request targets and Host headers that try to steer the proxy', async (t) => {
  const chosen = await new DemoUpstream('chosen').start()
  const other = await new DemoUpstream('other').start()
  const gw = await startGateway({ pools: { main: { targets: [{ url: chosen.url + '/api', id: 'chosen' }] } } })
  t.teardown(async () => { await gw.close(); await chosen.stop(); await other.stop() })
  const port = (gw.app.server.address() as AddressInfo).port
  const pool = gw.app.lb.pool('main')

  /** Sends `GET <target>` and returns the status and the path the chosen upstream saw (or the error code). */
  async function get (target: string, host = 'gateway.example'): Promise<{ status: number, seen: string }> {
    const res = await rawRequest(port, [`GET ${target} HTTP/1.1`, `Host: ${host}`])
    const body = JSON.parse(res.body) as { url?: string, host?: string, code?: string }
    if (res.status === 200) {
      t.equal(body.host, `127.0.0.1:${chosen.port}`, `${target}: the chosen upstream's own Host is sent`)
      return { status: 200, seen: body.url ?? '' }
    }
    return { status: res.status, seen: body.code ?? '' }
  }

  await t.test('encoded dots', async (t) => {
    // A dot segment in any spelling would climb out of the base path once a URL parser resolves it: refused.
    // A backslash, raw or encoded, counts as '/': many upstream servers read it so.
    for (const target of ['/%2e%2e/x', '/a/%2E%2E/%2e%2e/x', '/.%2e/x', '/%2e./x', '/..%2fx', '/a/..', '/%5c..%5cx', '/a/..%5cx', '/a%5C..%5C..%5Cx']) {
      t.same(await get(target), { status: 400, seen: 'FST_LB_BAD_PATH' }, `${target} is refused`)
    }
    // Dots that are no segment of their own, and double-encoded ones, are data: passed on as they came.
    t.same(await get('/a%2eb/c..d/.e'), { status: 200, seen: '/api/a%2eb/c..d/.e' })
    t.same(await get('/%252e%252e/x'), { status: 200, seen: '/api/%252e%252e/x' })
    t.same(await get('/%5c.%5cx'), { status: 200, seen: '/api/%5c.%5cx' })
  })

  await t.test('backslashes stay inside the base path', async (t) => {
    // URL parsers read '\' as '/': unescaped, this would reach /x on the upstream, outside /api; escaped, an upstream may still read it so.
    t.same(await get('/a\\..\\..\\x'), { status: 400, seen: 'FST_LB_BAD_PATH' })
    t.same(await get('/a\\b\\c'), { status: 200, seen: '/api/a%5Cb%5Cc' }, 'backslashes without a dot segment go escaped')
    t.same(await get('/\\\\other.example/x'), { status: 200, seen: '/api/%5C%5Cother.example/x' })
  })

  await t.test('the query goes upstream as it came, whatever it holds', async (t) => {
    t.same(await get('/x?next=/../admin&a=1&a=2'), { status: 200, seen: '/api/x?next=/../admin&a=1&a=2' })
    t.same(await get('/x?q=%zz&r=%E0%A4'), { status: 200, seen: '/api/x?q=%zz&r=%E0%A4' }, 'a malformed escape is the upstream\'s business')
    t.same(await get('/x?u=http://other.example/&v=a\\b'), { status: 200, seen: '/api/x?u=http://other.example/&v=a\\b' })
  })

  await t.test('a forged Host header', async (t) => {
    for (const host of [`127.0.0.1:${other.port}`, 'other.example', 'localhost:1', `127.0.0.1:${port}`]) {
      t.same(await get('/x', host), { status: 200, seen: '/api/x' }, `Host: ${host}`)
    }
    // The absolute form and the Host header disagree: neither chooses the origin.
    t.same(await get(`http://127.0.0.1:${other.port}/x`, `127.0.0.1:${other.port}`), { status: 200, seen: '/api/x' })
  })

  await t.test('the asterisk form asks the gateway, not an upstream path', async (t) => {
    const hits = chosen.hits
    const options = await rawRequest(port, ['OPTIONS * HTTP/1.1', 'Host: gateway.example'])
    t.equal(options.status, 204, 'OPTIONS * is answered by the gateway')
    t.match(options.head, /\r\nallow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS/i)
    const other = await rawRequest(port, ['GET * HTTP/1.1', 'Host: gateway.example'])
    t.equal(other.status, 400, 'another method may not name "*"')
    t.equal((JSON.parse(other.body) as { code: string }).code, 'FST_LB_BAD_PATH')
    t.equal(chosen.hits, hits, 'neither became a request for /api/* upstream')
  })

  await t.test('only the chosen upstream was ever reached', async (t) => {
    t.equal(other.hits, 0)
    t.ok(chosen.hits >= 10)
    await assertIdle(t, pool, 'after every steering attempt')
  })
})
