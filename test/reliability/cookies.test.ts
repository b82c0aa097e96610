import { test } from 'tap'
import fc from 'fast-check'
import type { AddressInfo } from 'node:net'
import { stickyGateway } from '../affinity/fixtures'
import { assertIdle } from '../helpers/leaks'
import { rawRequest } from '../helpers/raw-http'

// Forged signatures, tampered fields, expiry and oversized values are covered in test/affinity/tampering.test.ts.

function bytes (keep: (b: number) => boolean): fc.Arbitrary<string> {
  return fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a.filter(keep)).toString('latin1'))
}

/**
 * Random bytes for a header value: mostly those HTTP allows in one (tab, visible
 * ASCII and bytes above 0x7f, ';', '=', '"' and '%' included), sometimes any
 * byte but CR and LF, which would end the line.
 */
const headerBytes = fc.oneof(
  { arbitrary: bytes((b) => b === 9 || (b >= 32 && b !== 127)), weight: 4 },
  { arbitrary: bytes((b) => b !== 13 && b !== 10), weight: 1 }
)

test('affinity cookies of random bytes, under repeated names, among other cookies: ignored, counted, served', async (t) => {
  const { ups, gw, pool, results } = await stickyGateway(t, ['a', 'b', 'c'])
  const port = (gw.app.server.address() as AddressInfo).port
  const ids = new Set(ups.map((u) => u.id))
  let served = 0
  let refusedByParser = 0

  const cookieHeader = fc.record({
    values: fc.array(headerBytes, { minLength: 1, maxLength: 4 }),
    others: fc.array(fc.tuple(fc.stringMatching(/^[a-z]{1,8}$/), headerBytes), { maxLength: 3 }),
    huge: fc.boolean()
  }).map(({ values, others, huge }) => [
    // The affinity cookie comes first; its value ends at the first ';' of the random bytes.
    ...values.map((v) => `lb_main=${huge ? v.repeat(40) : v}`),
    ...others.map(([name, v]) => `${name}=${v}`)
  ].join('; ').slice(0, 12_000))

  await fc.assert(fc.asyncProperty(cookieHeader, async (cookie) => {
    const before = results.length
    const res = await rawRequest(port, ['GET /x HTTP/1.1', 'Host: gw', `Cookie: ${cookie}`])
    if (res.status === 400) {
      // Bytes Node's HTTP parser refuses (control characters) end the request before the plugin sees it.
      refusedByParser++
      if (results.length !== before) throw new Error('a refused request reached the pool')
      return
    }
    const by = /\r\nx-served-by: (\w+)/i.exec(res.head)?.[1] ?? ''
    if (res.status !== 200 || !ids.has(by)) throw new Error(`${res.status} ${res.head.slice(0, 200)}`)
    served++
    const seen = results.slice(before)
    if (seen.length !== 1 || seen[0] !== 'rejected') throw new Error(`affinity results ${JSON.stringify(seen)} for ${JSON.stringify(cookie.slice(0, 80))}`)
    if (!/\r\nset-cookie: lb_main=[a-z]\./i.test(res.head)) throw new Error('no new affinity cookie')
  }), { numRuns: 150 })

  t.ok(served >= 75, `${served} served, ${refusedByParser} refused by Node's parser`)
  t.equal(results.filter((r) => r === 'rejected').length, served, 'every bad cookie counted once as rejected')
  await assertIdle(t, pool, 'after random cookies')
})
