import Fastify from 'fastify'
import lb from '../lib/index'
import { DemoUpstream } from '../test/helpers/demo-upstream'
import { FILE_UPSTREAMS, startFileUpstreams, TARGETS_FILE } from './file-demo'

/**
 * The example gateway: three demo upstreams and a gateway with one route per
 * algorithm. `npm run example`, then try the URLs it prints.
 */
async function main (): Promise<void> {
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  const upstreams = await Promise.all(['a', 'b', 'c'].map(async (id) => new DemoUpstream(id).start(0)))
  const targets = upstreams.map((u) => ({ url: u.url, id: u.id }))
  // d, e and f listen on fixed ports so that targets.json can name them.
  upstreams.push(...await startFileUpstreams())

  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
  await app.register(lb, {
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

  // A demo upstream can be told to fail and recover, to watch failover happen.
  app.post('/demo/:id/:mode', async (request, reply) => {
    const { id, mode } = request.params as { id: string, mode: string }
    const upstream = upstreams.find((u) => u.id === id)
    if (upstream === undefined) return reply.code(404).send({ error: `no demo upstream ${id}` })
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
        return reply.code(400).send({ error: 'mode is one of down, up, ok, error, hang, slow' })
    }
    return { id, listening: upstream.listening, mode: upstream.mode }
  })

  await app.listen({ port, host })
  const base = `http://${host}:${port}`
  const lines = [
    `fastify-lb example gateway on ${base}`,
    `demo upstreams: ${upstreams.map((u) => `${u.id}=${u.url}`).join(' ')}`,
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
  process.stdout.write(lines.join('\n') + '\n')

  let closing = false
  const shutdown = async (): Promise<void> => {
    if (closing) return
    closing = true
    await app.close()
    await Promise.all(upstreams.map(async (u) => u.stop()))
    process.exit(0)
  }
  process.on('SIGINT', () => { shutdown().catch(() => process.exit(1)) })
  process.on('SIGTERM', () => { shutdown().catch(() => process.exit(1)) })
}

main().catch((err: unknown) => {
  process.stderr.write(`example gateway failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
