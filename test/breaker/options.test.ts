import { test } from 'tap'
import Fastify from 'fastify'
import lb from '../../lib/index'
import { resolvePoolOptions } from '../../lib/options/resolve'

test('defaults: off unless set; resilience4j ratios, a 10 s window', async (t) => {
  t.equal(resolvePoolOptions('p', {}).circuitBreaker, null)
  t.equal(resolvePoolOptions('p', { circuitBreaker: false }).circuitBreaker, null)
  t.same(resolvePoolOptions('p', { circuitBreaker: {} }).circuitBreaker, {
    failureRatio: 0.5,
    slowCallRatio: 1,
    slowCallMs: Infinity,
    window: 10_000,
    minRequests: 20,
    openFor: 10_000,
    halfOpenRequests: 10
  })
  t.same(resolvePoolOptions('p', { circuitBreaker: { slowCallMs: 800, slowCallRatio: 0.3, failureRatio: 1, window: 60_000, minRequests: 1, openFor: 1, halfOpenRequests: 1 } }).circuitBreaker, {
    failureRatio: 1, slowCallRatio: 0.3, slowCallMs: 800, window: 60_000, minRequests: 1, openFor: 1, halfOpenRequests: 1
  })
})

const bad: Array<[string, unknown, string, string, string]> = [
  ['not an object', 'on', 'circuitBreaker', '"on"', 'must be an object or false'],
  ['unknown key', { ratio: 0.5 }, 'circuitBreaker.ratio', '0.5', 'is not a circuit breaker option'],
  ['failureRatio 0', { failureRatio: 0 }, 'circuitBreaker.failureRatio', '0', 'must be a number above 0 and at most 1'],
  ['failureRatio as a percentage', { failureRatio: 50 }, 'circuitBreaker.failureRatio', '50', 'must be a number above 0 and at most 1'],
  ['failureRatio a string', { failureRatio: '0.5' }, 'circuitBreaker.failureRatio', '"0.5"', 'must be a number above 0 and at most 1'],
  ['slowCallRatio', { slowCallMs: 100, slowCallRatio: -0.1 }, 'circuitBreaker.slowCallRatio', '-0.1', 'must be a number above 0 and at most 1'],
  ['slowCallRatio without slowCallMs', { slowCallRatio: 0.5 }, 'circuitBreaker.slowCallRatio', '0.5', 'needs slowCallMs, without which no call is slow'],
  ['slowCallMs', { slowCallMs: 0 }, 'circuitBreaker.slowCallMs', '0', 'must be an integer from 1 to 3600000'],
  ['window in seconds', { window: 10 }, 'circuitBreaker.window', '10', 'must be whole seconds in ms: a multiple of 1000 from 1000 to 3600000'],
  ['window not whole seconds', { window: 1500 }, 'circuitBreaker.window', '1500', 'must be whole seconds in ms: a multiple of 1000 from 1000 to 3600000'],
  ['minRequests', { minRequests: 0 }, 'circuitBreaker.minRequests', '0', 'must be an integer from 1 to 1000000'],
  ['openFor', { openFor: 2.5 }, 'circuitBreaker.openFor', '2.5', 'must be an integer from 1 to 3600000'],
  ['halfOpenRequests', { halfOpenRequests: 0 }, 'circuitBreaker.halfOpenRequests', '0', 'must be an integer from 1 to 10000']
]

for (const [what, value, field, shown, why] of bad) {
  test(`bad circuitBreaker (${what}) fails at register, naming pool, field and value`, async (t) => {
    const app = Fastify()
    t.teardown(async () => { await app.close() })
    await t.rejects(async () => { await app.register(lb, { pools: { users: { targets: ['http://127.0.0.1:1'], circuitBreaker: value as object } } }) }, {
      code: 'FST_LB_INVALID_OPTION',
      message: `Invalid option for pool "users": ${field} = ${shown} (${why})`
    })
  })
}
