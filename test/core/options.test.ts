import { test } from 'tap'
import Fastify from 'fastify'
import lb from '../../lib/index'
import { startupError } from '../helpers/startup'

const good = 'http://127.0.0.1:9001'

const cases: Array<[string, unknown, RegExp]> = [
  ['a bad URL', { pools: { users: { targets: ['not a url'] } } }, /pool "users": targets\[0\]\.url = "not a url"/],
  ['a non-http URL', { pools: { users: { targets: ['ftp://127.0.0.1/x'] } } }, /pool "users": targets\[0\]\.url = "ftp:\/\/127\.0\.0\.1\/x" \(must use http or https\)/],
  ['a URL with a query', { pools: { users: { targets: ['http://127.0.0.1:1/?a=1'] } } }, /targets\[0\]\.url .*must not carry/],
  ['a duplicate target', { pools: { users: { targets: [good, good + '/'] } } }, /pool "users": targets\[1\]\.url = "http:\/\/127\.0\.0\.1:9001" \(duplicates another target\)/],
  ['a duplicate id', { pools: { users: { targets: [{ url: good, id: 'x' }, { url: 'http://127.0.0.1:9002', id: 'x' }] } } }, /targets\[1\]\.id = "x"/],
  ['a zero weight', { pools: { users: { targets: [{ url: good, weight: 0 }] } } }, /pool "users": targets\[0\]\.weight = 0 \(must be a positive integer/],
  ['a fractional weight', { pools: { users: { targets: [{ url: good, weight: 1.5 }] } } }, /targets\[0\]\.weight = 1\.5/],
  ['a string weight', { pools: { users: { targets: [{ url: good, weight: '2' }] } } }, /targets\[0\]\.weight = "2"/],
  ['an unknown algorithm', { pools: { users: { targets: [good], algorithm: 'fastest' } } }, /pool "users": algorithm = "fastest" \(must be one of round-robin/],
  ['an unknown pool option', { pools: { users: { targets: [good], algoritm: 'random' } } }, /pool "users": algoritm = "random" \(is not a pool option\)/],
  ['an unknown target field', { pools: { users: { targets: [{ url: good, wieght: 2 }] } } }, /targets\[0\]\.wieght = 2/],
  ['targets not an array', { pools: { users: { targets: good } } }, /pool "users": targets = "http/],
  ['a bad id', { pools: { users: { targets: [{ url: good, id: 'a b' }] } } }, /targets\[0\]\.id = "a b"/],
  ['a bad hash key', { pools: { users: { targets: [good], algorithm: 'consistent-hash', hashKey: { header: '' } } } }, /hashKey\.header = ""/],
  ['a hashing fallback', { pools: { users: { targets: [good], hashFallback: 'maglev' } } }, /hashFallback = "maglev"/],
  ['a table size that is not prime', { pools: { users: { targets: [good], tableSize: 65536 } } }, /tableSize = 65536 \(must be a prime/],
  ['a negative timeout', { pools: { users: { targets: [good], timeout: -1 } } }, /timeout = -1/],
  ['a negative drain timeout', { pools: { users: { targets: [good], drainTimeout: -1 } } }, /pool "users": drainTimeout = -1 \(must be an integer/],
  ['a fractional tunnel idle timeout', { pools: { users: { targets: [good], tunnelIdleTimeout: 1.5 } } }, /pool "users": tunnelIdleTimeout = 1\.5/],
  ['http2 as a string', { pools: { users: { targets: [good], http2: 'yes' } } }, /pool "users": http2 = "yes" \(must be a boolean/],
  ['a buffer limit above 16 MiB', { pools: { users: { targets: [good], bufferLimit: 17_000_000 } } }, /pool "users": bufferLimit = 17000000/],
  ['too many retries', { pools: { users: { targets: [good], retry: { attempts: 11 } } } }, /retry\.attempts = 11/],
  ['a retry status outside 5xx', { pools: { users: { targets: [good], retry: { statuses: [404] } } } }, /retry\.statuses\[0\] = 404/],
  ['a negative deadline', { pools: { users: { targets: [good], retry: { deadline: -5 } } } },
    /^Invalid option for pool "users": retry\.deadline = -5 \(must be an integer from 0 to 3600000\)$/],
  ['a deadline in seconds as a string', { pools: { users: { targets: [good], retry: { deadline: '2s' } } } }, /pool "users": retry\.deadline = "2s" \(must be an integer/],
  ['back-off true', { pools: { users: { targets: [good], retry: { backoff: true } } } },
    /^Invalid option for pool "users": retry\.backoff = true \(must be an object or false\)$/],
  ['an unknown back-off field', { pools: { users: { targets: [good], retry: { backoff: { jitter: 0.5 } } } } },
    /pool "users": retry\.backoff\.jitter = 0\.5 \(is not a retry\.backoff option\)/],
  ['a negative back-off base', { pools: { users: { targets: [good], retry: { backoff: { base: -1 } } } } }, /retry\.backoff\.base = -1 \(must be an integer from 0 to 60000\)/],
  ['a back-off max below its base', { pools: { users: { targets: [good], retry: { backoff: { base: 100, max: 50 } } } } },
    /^Invalid option for pool "users": retry\.backoff\.max = 50 \(must be an integer from retry\.backoff\.base \(100\) to 60000\)$/],
  ['an unknown plugin option', { poolz: {} }, /pool "\(plugin\)": poolz/],
  ['a pool that is not an object', { pools: { users: 3 } }, /pool "users": \(pool\) = 3/]
]

for (const [what, options, message] of cases) {
  test(`startup fails on ${what}`, async (t) => {
    const err = await startupError(options)
    t.equal(err.code, 'FST_LB_INVALID_OPTION')
    t.match(err.message, message)
  })
}

test('a route naming an unknown pool fails startup', async (t) => {
  const err = await startupError({ pools: { users: { targets: [good] } } }, 'orders')
  t.equal(err.code, 'FST_LB_UNKNOWN_POOL')
  t.match(err.message, /Route "GET \/r" names the unknown pool "orders"/)
})

test('an inline pool with a bad option fails startup naming the route', async (t) => {
  const err = await startupError({}, { targets: [{ url: good, weight: -2 }] })
  t.equal(err.code, 'FST_LB_INVALID_OPTION')
  t.match(err.message, /pool "\/r": targets\[0\]\.weight = -2/)
})

test('runtime changes are checked like options', async (t) => {
  const app = Fastify()
  await app.register(lb, { pools: { users: { targets: [{ url: good, id: 'a' }] } } })
  await app.ready()
  t.teardown(async () => { await app.close() })
  const pool = app.lb.pool('users')
  t.throws(() => pool.add('nope'), { code: 'FST_LB_INVALID_OPTION', message: /pool "users": add\(target\)\.url = "nope"/ })
  t.throws(() => pool.add({ url: good }), { code: 'FST_LB_INVALID_OPTION', message: /duplicates a target/ })
  t.throws(() => pool.setWeight('a', 0), { code: 'FST_LB_INVALID_OPTION', message: /setWeight\(a\)\.weight = 0/ })
  t.throws(() => pool.setWeight('zz', 2), { code: 'FST_LB_INVALID_OPTION', message: /setWeight\(id\) = "zz"/ })
  t.throws(() => app.lb.pool('nope'), { code: 'FST_LB_INVALID_OPTION' })
  t.equal(pool.targets.length, 1, 'nothing changed')
})

test('default ids are stable, opaque and the same on every replica', async (t) => {
  const make = async () => {
    const app = Fastify()
    await app.register(lb, { pools: { users: { targets: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002/'] } } })
    await app.ready()
    const ids = app.lb.pool('users').targets.map((x) => x.id)
    await app.close()
    return ids
  }
  const one = await make()
  const two = await make()
  t.same(one, two)
  for (const id of one) {
    t.match(id, /^t[0-9a-f]{12}$/)
    t.notOk(id.includes('9001') || id.includes('127'), 'the id does not reveal the address')
  }
})
