// Compiled by `npm run typecheck` (part of `npm test`): every @ts-expect-error below
// must stay an error, so a typing that became too loose breaks the build.
import Fastify from 'fastify'
import lb, { type AdminChange, type CircuitEvent, type CircuitState, type LbOptions, type LbTarget, type PoolOptions } from '../../lib/index'

const app = Fastify()

const options: LbOptions = {
  pools: {
    users: {
      targets: ['http://127.0.0.1:9001', { url: 'http://127.0.0.1:9002', weight: 3, id: 'b' }],
      algorithm: 'weighted-round-robin',
      retry: { attempts: 1 }
    }
  }
}
export const registered = app.register(lb, options)

// @ts-expect-error an unknown algorithm is a compile error
const badAlgorithm: PoolOptions = { targets: [], algorithm: 'fastest' }
// @ts-expect-error a weight is a number
const badWeight: PoolOptions = { targets: [{ url: 'http://127.0.0.1:1', weight: '2' }] }
// @ts-expect-error targets are URLs or target objects
const badTarget: PoolOptions = { targets: [42] }
// @ts-expect-error an unknown pool option is a compile error
const badKey: PoolOptions = { targets: [], algoritm: 'random' }
export const typed = [badAlgorithm, badWeight, badTarget, badKey]

app.get('/users/*', { config: { upstream: 'users' } }, app.lb.forward)
app.get('/inline/*', { config: { upstream: { targets: ['http://127.0.0.1:9003'], algorithm: 'consistent-hash', hashKey: { header: 'x-user-id' } } } }, app.lb.forward)
// @ts-expect-error config.upstream is a pool name or pool options
app.get('/bad', { config: { upstream: 42 } }, app.lb.forward)

app.get('/own', { config: { upstream: 'users' } }, async (request, reply) => {
  const target: LbTarget | null = request.target
  if (target === null) return reply.code(503).send()
  const id: string = target.id
  const weight: number = target.weight
  // @ts-expect-error a target is read-only for handlers
  target.weight = 2
  reply.header('x-id', id).header('x-weight', weight)
  return reply.from(target.url + request.url)
})

const pool = app.lb.pool('users')
export const inFlight: number = pool.targets[0].inFlight

const breaking: PoolOptions = { targets: [], circuitBreaker: { failureRatio: 0.5, slowCallMs: 800, slowCallRatio: 0.8, window: 10_000, minRequests: 20, openFor: 10_000, halfOpenRequests: 5 } }
// @ts-expect-error circuit breaker ratios are numbers
const badRatio: PoolOptions = { targets: [], circuitBreaker: { failureRatio: '50%' } }
export const breakers = [breaking, badRatio]
pool.on('circuit', (event: CircuitEvent) => {
  const to: CircuitState = event.to
  const ratio: number | null = event.failureRatio
  app.log.info({ to, ratio }, 'circuit')
})

// The admin API's option and its event on app.lb, typed by kind.
export const withAdmin: LbOptions = { admin: { prefix: '/ops/lb', onRequest: async (_request, reply) => { await reply.code(401).send() } } }
// @ts-expect-error allowUnguarded is a boolean
export const badAdmin: LbOptions = { admin: { allowUnguarded: 'yes' } }
app.lb.on('admin', (change: AdminChange) => {
  if (change.kind === 'weight') {
    const to: number = change.to
    return to
  }
  if (change.kind === 'split') {
    const weights: Record<string, number> = change.to
    return weights
  }
  // @ts-expect-error only weight and split changes carry a route or a number here
  const route: string = change.route
  return route
})
