import { test } from 'tap'
import { ipHash } from '../../../lib/balancers/hash/ip-hash'
import { consistentHash } from '../../../lib/balancers/hash/ring'
import { ctx, many, tally } from '../fixtures'

const v4 = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
const v6 = (i: number): string => `2001:db8::${i.toString(16)}`

test('an address always lands on the same target, IPv4 and IPv6', async (t) => {
  const targets = many(5)
  const lb = ipHash({})
  lb.update(targets)
  const other = ipHash({})
  other.update([...targets].reverse())
  for (const ip of ['192.0.2.7', '2001:db8::1', '::ffff:192.0.2.7', 'fe80::1%eth0']) {
    const first = lb.pick(ctx({ ip }))
    t.ok(first)
    t.equal(lb.pick(ctx({ ip })), first, ip)
    t.equal(other.pick(ctx({ ip })), first, `${ip} on another replica`)
  }
})

test('the whole address counts: neighbours spread over all targets', async (t) => {
  const lb = ipHash({})
  lb.update(many(5))
  // Addresses that differ only in the last octet or group.
  t.equal(tally(lb, 256, (i) => ctx({ ip: `192.0.2.${i}` })).size, 5)
  t.equal(tally(lb, 256, (i) => ctx({ ip: v6(i) })).size, 5)
})

test('it is the ring keyed by the address, and ignores the hash key', async (t) => {
  const targets = many(7)
  const byIp = ipHash({})
  byIp.update(targets)
  const byKey = consistentHash({})
  byKey.update(targets)
  let differ = 0
  for (let i = 0; i < 500; i++) {
    const ip = i % 2 === 0 ? v4(i) : v6(i)
    if (byIp.pick(ctx({ ip, key: 'ignored' })) !== byKey.pick(ctx({ key: ip }))) differ++
  }
  t.equal(differ, 0)
})

test('removing a target moves only its own addresses', async (t) => {
  const targets = many(5)
  const before = ipHash({})
  before.update(targets)
  const after = ipHash({})
  after.update(targets.slice(1))
  let moved = 0
  let fromStaying = 0
  for (let i = 0; i < 5000; i++) {
    const ip = i % 2 === 0 ? v4(i) : v6(i)
    const was = before.pick(ctx({ ip }))
    if (was === after.pick(ctx({ ip }))) continue
    moved++
    if (was !== targets[0]) fromStaying++
  }
  t.ok(moved / 5000 > 0.15 && moved / 5000 < 0.25, `moved ${moved / 5000}`)
  t.equal(fromStaying, 0, 'no address moved from a target that stayed')
})
