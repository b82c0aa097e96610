/**
 * The proxies the benchmark compares. Each runs in a child process of its own
 * (bench/proxy.ts), built by `build` below; the parent only knows the names.
 */
import { resolve } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import replyFrom from '@fastify/reply-from'
import fastifyCookie from '@fastify/cookie'
import lb from '../lib/index'
import type { AlgorithmName } from '../lib/balancers/index'
import type { PoolOptions } from '../lib/options'

export interface CaseInfo {
  name: string
  /** What the row shows, for the tables. */
  label: string
  /** Answered by the upstream itself: no proxy process. */
  direct?: boolean
  /** Requests carry an affinity cookie obtained beforehand, as returning clients do. */
  sticky?: boolean
}

export const ALGORITHMS: AlgorithmName[] = [
  'round-robin', 'weighted-round-robin', 'least-connections', 'p2c-ewma', 'random', 'ip-hash', 'consistent-hash', 'maglev'
]

export const BASELINE = 'reply-from'

export const CASES: CaseInfo[] = [
  { name: 'direct', label: 'upstream directly (nginx on the proxy core)', direct: true },
  { name: BASELINE, label: 'reply-from, one upstream (baseline)' },
  { name: 'reply-from-balanced', label: 'reply-from, `base` array (undici BalancedPool)' },
  ...ALGORITHMS.map((a) => ({ name: `lb-${a}`, label: `fastify-lb ${a}, metrics on` })),
  { name: 'lb-everything', label: 'fastify-lb everything on, returning clients (valid affinity cookie)', sticky: true },
  { name: 'lb-everything-new', label: 'fastify-lb everything on, new clients (a new cookie for every request)' }
]

/** Run only when named with --only: what each Fastify feature the plugin relies on costs by itself. */
export const DIAGNOSTICS: CaseInfo[] = [
  { name: `${BASELINE}+cookie`, label: 'baseline + @fastify/cookie registered (its onSend hook)' },
  { name: `${BASELINE}+prehandler`, label: 'baseline + a route preHandler hook' },
  { name: `${BASELINE}+abort-hook`, label: 'baseline + a route onRequestAbort hook' },
  { name: `${BASELINE}+hooks`, label: 'baseline + all three' },
  { name: 'lb-one-upstream', label: 'fastify-lb round-robin over the baseline\'s one upstream' }
]

/** The affinity secret of the "everything on" cases; a benchmark-only value. */
const SECRET = 'bench-affinity-secret-0123456789'

/** Every feature a production pool would turn on, with default settings where there are defaults. */
function everything (targets: string[]): PoolOptions {
  return {
    targets,
    algorithm: 'least-connections',
    healthCheck: { path: '/', interval: 1000 },
    outlierDetection: {},
    slowStart: { window: 10_000 },
    retry: { attempts: 2 },
    affinity: { secret: SECRET }
  }
}

/**
 * `ref-lb-<case>`: the same case with the plugin of another checkout (its root
 * in LB_BENCH_REF, e.g. a `git worktree` of main), to compare a change with
 * what it changes: `LB_BENCH_REF=../ref npm run bench:pair -- ref-lb-round-robin lb-round-robin`.
 */
function referencePlugin (): typeof lb {
  const root = process.env.LB_BENCH_REF
  if (root === undefined || root === '') throw new Error('ref- cases need LB_BENCH_REF, the root of another checkout')
  return (require(resolve(root, 'lib/index.ts')) as { default: typeof lb }).default
}

/** A Fastify app that proxies GET /* for the named case to the given upstream URLs. */
export async function build (name: string, upstreams: string[]): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  if (name === BASELINE) {
    await app.register(replyFrom, { base: upstreams[0] })
    app.get('/*', (request, reply) => reply.from(request.url))
  } else if (name.startsWith(`${BASELINE}+`)) {
    // Diagnostics: the baseline plus one of the Fastify features the plugin uses, each doing nothing.
    const extra = name.slice(BASELINE.length + 1)
    await app.register(replyFrom, { base: upstreams[0] })
    if (extra === 'cookie' || extra === 'hooks') await app.register(fastifyCookie, { hook: false })
    const preHandler = (_request: unknown, _reply: unknown, done: () => void): void => done()
    const onRequestAbort = (_request: unknown, done: () => void): void => done()
    app.get('/*', {
      preHandler: extra === 'prehandler' || extra === 'hooks' ? preHandler : undefined,
      onRequestAbort: extra === 'abort-hook' || extra === 'hooks' ? onRequestAbort : undefined
    }, (request, reply) => reply.from(request.url))
  } else if (name === 'reply-from-balanced') {
    await app.register(replyFrom, { base: upstreams })
    app.get('/*', (request, reply) => reply.from(request.url))
  } else if (name === 'lb-one-upstream') {
    // Like the baseline, one upstream: what the plugin costs apart from spreading the load.
    await app.register(lb, { pools: { bench: { targets: [upstreams[0]], algorithm: 'round-robin' } } })
    app.get('/*', { config: { upstream: 'bench' } }, app.lb.forward)
  } else if (name.startsWith('lb-') || name.startsWith('ref-lb-')) {
    const algorithm = name.slice(name.indexOf('lb-') + 3)
    const pool: PoolOptions = algorithm.startsWith('everything')
      ? everything(upstreams)
      : { targets: upstreams, algorithm: algorithm as AlgorithmName }
    // Metrics and the status page are on by default; the benchmark keeps them.
    await app.register(name.startsWith('ref-') ? referencePlugin() : lb, { pools: { bench: pool } })
    app.get('/*', { config: { upstream: 'bench' } }, app.lb.forward)
  } else if (name === 'affinity-memory') {
    // bench/affinity-memory.ts: a pool with affinity, and a route that reports memory after a full GC (node --expose-gc).
    await app.register(lb, { pools: { bench: { targets: upstreams, algorithm: 'round-robin', affinity: { secret: SECRET } } } })
    app.get('/*', { config: { upstream: 'bench' } }, app.lb.forward)
    app.get('/__bench/memory', async () => {
      const gc = (globalThis as { gc?: () => void }).gc
      if (gc !== undefined) gc()
      return process.memoryUsage()
    })
  } else {
    throw new Error(`unknown case ${name}`)
  }
  return app
}
