import type { Test } from 'tap'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { startUpstreams, type DemoUpstream } from '../helpers/demo-upstream'
import type { AffinityResult } from '../../lib/affinity/affinity'
import type { AffinityOptions } from '../../lib/affinity/options'
import type { LbOptions, PoolOptions } from '../../lib/options/resolve'
import type { Pool } from '../../lib/pool/pool'
import { CookieJar } from '../helpers/cookie-jar'
import { Client, startGateway, type Answer, type Gateway } from '../helpers/gateway'

export const SECRET = 'test-affinity-secret-0123456789abcdef'

export interface Sticky {
  ups: DemoUpstream[]
  gw: Gateway
  pool: Pool
  client: Client
  /** Every affinity result the pool emitted, in order. */
  results: AffinityResult[]
  /** A new client with its own cookies. */
  jar: () => CookieJar
}

/** Counts of each result, for exact comparisons. */
export function tally (results: AffinityResult[]): Partial<Record<AffinityResult, number>> {
  const out: Partial<Record<AffinityResult, number>> = {}
  for (const r of results) out[r] = (out[r] ?? 0) + 1
  return out
}

/**
 * A real gateway with the given options (and routes, by default `/*` to pool
 * `main`) over already started upstreams, and a client; all stopped when the
 * test ends.
 */
export async function serve (
  t: Test,
  ups: DemoUpstream[],
  options: LbOptions,
  routes?: (app: FastifyInstance) => void,
  serverOptions?: FastifyServerOptions
): Promise<{ gw: Gateway, client: Client }> {
  const gw = await startGateway(options, routes, serverOptions)
  const client = new Client()
  t.teardown(async () => {
    await client.close()
    await gw.close()
    await Promise.all(ups.map(async (u) => u.stop()))
  })
  return { gw, client }
}

/** Pool options with cookie affinity over upstreams, targets named by the upstreams' ids. */
export function stickyPool (ups: DemoUpstream[], affinity: Partial<AffinityOptions> = {}, pool: Omit<PoolOptions, 'targets' | 'affinity'> = { algorithm: 'round-robin' }): PoolOptions {
  return { ...pool, targets: ups.map((u) => ({ url: u.url, id: u.id })), affinity: { secret: SECRET, ...affinity } }
}

/**
 * Upstreams named by ids behind a real gateway whose pool `main` (round robin
 * unless told otherwise, so clients without affinity would rotate) has cookie
 * affinity.
 */
export async function stickyGateway (
  t: Test,
  ids: string[],
  affinity: Partial<AffinityOptions> = {},
  pool?: Omit<PoolOptions, 'targets' | 'affinity'>
): Promise<Sticky> {
  const ups = await startUpstreams(ids)
  const { gw, client } = await serve(t, ups, { pools: { main: stickyPool(ups, affinity, pool) } })
  const results: AffinityResult[] = []
  const main = gw.app.lb.pool('main')
  main.on('affinity', (result: AffinityResult) => results.push(result))
  return { ups, gw, pool: main, client, results, jar: () => new CookieJar(client) }
}

/** One request of a new client whose pool cookie is `value`: its answer, the affinity results it produced, the client. */
export async function sendCookie (sticky: Sticky, value: string): Promise<{ res: Answer, produced: AffinityResult[], client: CookieJar }> {
  const client = sticky.jar()
  client.cookies.set('lb_main', value)
  const before = sticky.results.length
  const res = await client.send(sticky.gw.url + '/x')
  return { res, produced: sticky.results.slice(before), client }
}
