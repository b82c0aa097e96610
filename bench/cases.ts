/**
 * The proxies the benchmark compares. Each runs in a child process of its own
 * (bench/proxy.ts), built by `build` below; the parent only knows the names.
 */
import { resolve } from 'node:path'
import Fastify, { type FastifyInstance, type RouteHandlerMethod, type RouteShorthandOptions } from 'fastify'
import replyFrom from '@fastify/reply-from'
import fastifyCookie, { Signer } from '@fastify/cookie'
import lb from '../lib/index'
import type { AlgorithmName } from '../lib/balancers/index'
import type { PoolOptions } from '../lib/options/resolve'

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
  { name: 'lb-one-upstream', label: 'fastify-lb round-robin over the baseline\'s one upstream' },
  { name: 'lb-everything-signer', label: "fastify-lb everything on, returning clients, affinity signed by @fastify/cookie's Signer", sticky: true },
  { name: 'lb-everything-new-signer', label: "fastify-lb everything on, new clients, affinity signed by @fastify/cookie's Signer" },
  { name: 'lb-round-robin-noxff', label: 'fastify-lb round-robin without X-Forwarded-* headers (forwardedHeaders: false)' }
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
 * `ref2-lb-<case>` takes the checkout in LB_BENCH_REF2: two checkouts against each other.
 */
function referencePlugin (variable: 'LB_BENCH_REF' | 'LB_BENCH_REF2'): typeof lb {
  const root = process.env[variable]
  if (root === undefined || root === '') throw new Error(`${variable === 'LB_BENCH_REF' ? 'ref-' : 'ref2-'} cases need ${variable}, the root of another checkout`)
  return (require(resolve(root, 'lib/index.ts')) as { default: typeof lb }).default
}

/** The limits of a gateway of bench/overload.ts: at most `maxConnections` requests in flight per target, then a queue. */
export interface OverloadLimits {
  maxConnections: number
  queue: { size: number, timeout: number }
}

/** The case name of a gateway of bench/overload.ts: `overload-none`, or `overload-limits-<maxConnections>-<queue size>-<queue timeout ms>`. */
export function overloadCase (limits: OverloadLimits | null): string {
  return limits === null ? 'overload-none' : `overload-limits-${limits.maxConnections}-${limits.queue.size}-${limits.queue.timeout}`
}

/** The pool of an overload case: the plugin's defaults (least connections, no limits), plus the limits its name gives. */
function overloadPool (name: string, upstreams: string[]): PoolOptions {
  if (name === overloadCase(null)) return { targets: upstreams }
  const match = /^overload-limits-(\d+)-(\d+)-(\d+)$/.exec(name)
  if (match === null) throw new Error(`unknown case ${name}`)
  const [maxConnections, size, timeout] = match.slice(1).map(Number)
  return { targets: upstreams.map((url) => ({ url, maxConnections })), queue: { size, timeout } }
}

/** GET (and HEAD) and POST of every path, all with one handler: `bench:pair --body` sends POSTs. */
function proxyEveryPath (app: FastifyInstance, options: RouteShorthandOptions, handler: RouteHandlerMethod): void {
  app.get('/*', options, handler)
  app.post('/*', options, handler)
}

/** A Fastify app that proxies GET and POST /* for the named case to the given upstream URLs. */
export async function build (name: string, upstreams: string[]): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  if (name === BASELINE) {
    await app.register(replyFrom, { base: upstreams[0] })
    proxyEveryPath(app, {}, (request, reply) => reply.from(request.url))
  } else if (name.startsWith(`${BASELINE}+`)) {
    // Diagnostics: the baseline plus one of the Fastify features the plugin uses, each doing nothing.
    const extra = name.slice(BASELINE.length + 1)
    await app.register(replyFrom, { base: upstreams[0] })
    if (extra === 'cookie' || extra === 'hooks') await app.register(fastifyCookie, { hook: false })
    const preHandler = (_request: unknown, _reply: unknown, done: () => void): void => done()
    const onRequestAbort = (_request: unknown, done: () => void): void => done()
    proxyEveryPath(app, {
      preHandler: extra === 'prehandler' || extra === 'hooks' ? preHandler : undefined,
      onRequestAbort: extra === 'abort-hook' || extra === 'hooks' ? onRequestAbort : undefined
    }, (request, reply) => reply.from(request.url))
  } else if (name === 'reply-from-balanced') {
    await app.register(replyFrom, { base: upstreams })
    proxyEveryPath(app, {}, (request, reply) => reply.from(request.url))
  } else if (name === 'lb-one-upstream') {
    // Like the baseline, one upstream: what the plugin costs apart from spreading the load.
    await app.register(lb, { pools: { bench: { targets: [upstreams[0]], algorithm: 'round-robin' } } })
    proxyEveryPath(app, { config: { upstream: 'bench' } }, app.lb.forward)
  } else if (/^(ref2?-)?lb-/.test(name)) {
    let algorithm = name.slice(name.indexOf('lb-') + 3)
    // `-noxff`: the same pool with forwardedHeaders off, what the X-Forwarded-* headers cost.
    const noXff = algorithm.endsWith('-noxff')
    if (noXff) algorithm = algorithm.slice(0, -'-noxff'.length)
    const pool: PoolOptions = algorithm.startsWith('everything')
      ? everything(upstreams)
      : { targets: upstreams, algorithm: algorithm as AlgorithmName }
    if (noXff) pool.forwardedHeaders = false
    // `-signer`: the affinity cookie signed by @fastify/cookie's Signer instead of the plugin's own HMAC.
    if (algorithm.endsWith('-signer')) pool.affinity = { secret: new Signer(SECRET) }
    // Metrics and the status page are on by default; the benchmark keeps them.
    const plugin = name.startsWith('ref-') ? referencePlugin('LB_BENCH_REF') : name.startsWith('ref2-') ? referencePlugin('LB_BENCH_REF2') : lb
    await app.register(plugin, { pools: { bench: pool } })
    proxyEveryPath(app, { config: { upstream: 'bench' } }, app.lb.forward)
  } else if (name.startsWith('overload-')) {
    // bench/overload.ts: the same pool of slow upstreams with and without limits.
    await app.register(lb, { pools: { bench: overloadPool(name, upstreams) } })
    proxyEveryPath(app, { config: { upstream: 'bench' } }, app.lb.forward)
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
