import Fastify from 'fastify'
import cluster from 'node:cluster'
import lb, { clusterPrimary } from '../lib/index'
import { DemoUpstream } from '../test/helpers/demo-upstream'
import { FILE_UPSTREAMS, startFileUpstreams, TARGETS_FILE } from './file-demo'

/**
 * The example gateway: three demo upstreams and a gateway with one route per
 * algorithm. `npm run example`, then try the URLs it prints.
 */
interface ControlResult { status: number, body: object }
type Control = (id: string, mode: string) => Promise<ControlResult>

/** Tells a demo upstream to fail or recover. */
async function controlUpstream (upstreams: DemoUpstream[], id: string, mode: string): Promise<ControlResult> {
  const upstream = upstreams.find((u) => u.id === id)
  if (upstream === undefined) return { status: 404, body: { error: `no demo upstream ${id}` } }
  switch (mode) {
    case 'down':
      await upstream.stop()
      break
    case 'up':
      if (!upstream.listening) await upstream.start()
      upstream.mode = 'ok'
      break
    case 'ok': case 'error': case 'hang': case 'slow':
      upstream.mode = mode
      break
    default:
      return { status: 400, body: { error: 'mode is one of down, up, ok, error, hang, slow' } }
  }
  return { status: 200, body: { id, listening: upstream.listening, mode: upstream.mode } }
}

/** The demo upstreams: a, b and c on free ports; d, e and f on fixed ports so that targets.json can name them. */
async function startUpstreams (): Promise<DemoUpstream[]> {
  const upstreams = await Promise.all(['a', 'b', 'c'].map(async (id) => new DemoUpstream(id).start(0)))
  upstreams.push(...await startFileUpstreams())
  return upstreams
}

/** `npm run example -- --workers 2`: the gateway in node:cluster workers, in cluster mode (docs/cluster.md). */
function workerCount (): number {
  const at = process.argv.indexOf('--workers')
  const n = at === -1 ? 1 : Number(process.argv[at + 1])
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error('--workers takes a number of workers from 1 to 64')
  return n
}

async function main (): Promise<void> {
  const workers = workerCount()
  if (workers > 1 && cluster.isPrimary) return await primary(workers)
  if (cluster.isWorker) {
    // The primary holds the demo upstreams; a worker asks it to change one.
    const targets = JSON.parse(process.env.EXAMPLE_UPSTREAMS ?? '[]') as Array<{ id: string, url: string }>
    let asked = 0
    return await gateway(targets, null, async (id, mode) => await new Promise<ControlResult>((resolve) => {
      const ask = ++asked
      const answer = (m: { demoAnswer?: number, result?: ControlResult }): void => {
        if (m.demoAnswer !== ask) return
        process.off('message', answer)
        resolve(m.result as ControlResult)
      }
      process.on('message', answer)
      process.send?.({ demo: ask, id, mode })
    }))
  }
  const upstreams = await startUpstreams()
  return await gateway(upstreams.slice(0, 3).map((u) => ({ url: u.url, id: u.id })), upstreams, async (id, mode) => await controlUpstream(upstreams, id, mode))
}

/** The primary of `--workers N`: the demo upstreams, clusterPrimary(), and N gateway workers, replaced when they die. */
async function primary (count: number): Promise<void> {
  const upstreams = await startUpstreams()
  clusterPrimary()
  const env = { EXAMPLE_UPSTREAMS: JSON.stringify(upstreams.slice(0, 3).map((u) => ({ url: u.url, id: u.id }))) }
  let stopping = false
  const fork = (): void => { cluster.fork(env) }
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return
    process.stderr.write(`worker ${worker.id} exited (${signal ?? code}); starting another\n`)
    fork()
  })
  cluster.on('message', (worker, m: { demo?: number, id?: string, mode?: string }) => {
    if (m.demo === undefined) return
    controlUpstream(upstreams, String(m.id), String(m.mode))
      .then((result) => worker.send({ demoAnswer: m.demo, result }))
      .catch(() => worker.send({ demoAnswer: m.demo, result: { status: 500, body: { error: 'failed' } } }))
  })
  for (let i = 0; i < count; i++) fork()
  process.stdout.write(`primary ${process.pid}: ${count} gateway workers in cluster mode; health checks run in one of them (docs/cluster.md)\n`)
  const shutdown = (): void => {
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill()
    Promise.all(upstreams.map(async (u) => u.stop())).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
}

async function gateway (targets: Array<{ id: string, url: string }>, upstreams: DemoUpstream[] | null, control: Control): Promise<void> {
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
  await app.register(lb, {
    cluster: cluster.isWorker,
    pools: {
      demo: { targets, algorithm: 'round-robin' }
    },
    // Both are on by default: Prometheus metrics (example-gateway/prometheus.yml scrapes them) and the status page.
    metrics: { path: '/metrics' },
    status: { path: '/lb/status', refreshSeconds: 2 }
  })

  const routes: Array<[string, string]> = []
  const route = (prefix: string, upstream: Parameters<typeof app.all>[1]['config'], what: string): void => {
    app.all(`${prefix}/*`, { config: upstream }, app.lb.forward)
    routes.push([prefix + '/', what])
  }

  // One route per algorithm, each with its own inline pool over the same demo upstreams.
  route('/rr', { upstream: 'demo' }, 'round robin (the shared pool "demo")')
  route('/weighted', { upstream: { targets: targets.map((t, i) => ({ ...t, weight: [5, 1, 1][i] })), algorithm: 'weighted-round-robin' } }, 'smooth weighted round robin, weights 5,1,1')
  route('/least', { upstream: { targets, algorithm: 'least-connections' } }, 'least connections')
  route('/p2c', { upstream: { targets, algorithm: 'p2c-ewma' } }, 'power of two choices over EWMA latency')
  route('/random', { upstream: { targets, algorithm: 'random' } }, 'random')
  route('/ip', { upstream: { targets, algorithm: 'ip-hash' } }, 'client address hash')
  route('/hash', { upstream: { targets, algorithm: 'consistent-hash', hashKey: { header: 'x-user-id' } } }, 'consistent hash on header x-user-id')
  // Cookie affinity: replicas sharing the secret honour each other's cookies.
  const secret = process.env.LB_COOKIE_SECRET ?? 'example-gateway-only-secret-change-me'
  route('/sticky', { upstream: { targets, algorithm: 'least-connections', affinity: { secret, maxAge: 3600 } } }, 'cookie affinity: the first answer pins the client')
  route('/bounded', { upstream: { targets, algorithm: 'consistent-hash', hashKey: { header: 'x-user-id' }, balanceFactor: 1.25 } }, 'consistent hash on x-user-id with bounded loads (1.25)')
  route('/file', { upstream: { discovery: { type: 'file', path: TARGETS_FILE }, algorithm: 'weighted-round-robin' } }, 'targets from example-gateway/targets.json, followed live')
  // Health and resilience together: a failing upstream is skipped at once (retries), then ejected or checked out, and ramps back in.
  route('/resilient', {
    upstream: {
      targets,
      // Weighted, so that slow start shows: a target coming back takes a growing share.
      algorithm: 'weighted-round-robin',
      timeout: 2000,
      healthCheck: { path: '/health', interval: 2000, timeout: 1000, unhealthyThreshold: 2, healthyThreshold: 2 },
      // A hanging demo upstream still answers /health: only the ejection's own time may end it.
      outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 10_000, unejectOnActiveCheck: false },
      retry: { attempts: 2 },
      slowStart: { window: 10_000 }
    }
  }, 'active checks, outlier detection, retries and slow start (docs/health.md)')

  // A demo upstream can be told to fail and recover, to watch failover happen (in cluster mode the primary holds them).
  app.post('/demo/:id/:mode', async (request, reply) => {
    const { id, mode } = request.params as { id: string, mode: string }
    const result = await control(id, mode)
    return reply.code(result.status).send(result.body)
  })

  await app.listen({ port, host })
  const base = `http://${host}:${port}`
  const lines = [
    `fastify-lb example gateway on ${base}`,
    `demo upstreams: ${targets.map((u) => `${u.id}=${u.url}`).join(' ')}${cluster.isWorker ? ` (worker ${String(cluster.worker?.id)})` : ''}`,
    '',
    ...routes.map(([path, what]) => `  curl -i ${base}${path}anything    # ${what}`),
    '',
    `  curl -i -H 'x-user-id: alice' ${base}/hash/profile   # the same user always reaches the same upstream`,
    `  curl -i -c /tmp/lb-jar -b /tmp/lb-jar ${base}/sticky/x   # repeat: the cookie keeps you on one upstream; stop it and the cookie follows you to another`,
    `  for u in a b c; do curl -s -X POST ${base}/demo/$u/slow; done; for i in $(seq 12); do curl -s -H 'x-user-id: hot' ${base}/bounded/x & done; wait   # a hot key spills over`,
    `  curl -X POST ${base}/demo/b/down   # stop upstream b (also: up, error, hang, slow, ok)`,
    `  for i in $(seq 9); do curl -s ${base}/resilient/x; echo; done   # with b down: no errors, b is skipped; the log says when it turns unhealthy`,
    `  curl -X POST ${base}/demo/b/up   # b passes 2 checks, turns healthy and takes a growing share over 10 s`,
    `  curl -X POST ${base}/demo/c/hang   # c accepts and never answers: /resilient retries GETs elsewhere after 2 s, then ejects c for 10 s`,
    `  open ${base}/lb/status in a browser   # every pool and target, reloading itself (JSON for curl)`,
    `  curl ${base}/metrics   # Prometheus metrics: prometheus --config.file=example-gateway/prometheus.yml scrapes them`,
    `  edit example-gateway/targets.json: add { "id": "f", "url": "http://127.0.0.1:${FILE_UPSTREAMS.f}" } or remove d, then curl ${base}/file/x again`,
    '',
    'Ctrl-C stops everything.'
  ]
  if (!cluster.isWorker || cluster.worker?.id === 1) process.stdout.write(lines.join('\n') + '\n')

  let closing = false
  const shutdown = async (): Promise<void> => {
    if (closing) return
    closing = true
    await app.close()
    await Promise.all((upstreams ?? []).map(async (u) => u.stop()))
    process.exit(0)
  }
  process.on('SIGINT', () => { shutdown().catch(() => process.exit(1)) })
  process.on('SIGTERM', () => { shutdown().catch(() => process.exit(1)) })
}

main().catch((err: unknown) => {
  process.stderr.write(`example gateway failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
