import Fastify from 'fastify'
import lb from '../lib/index'
import { DemoUpstream } from './demo-upstream'
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
    }
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
  route('/file', { upstream: { discovery: { type: 'file', path: TARGETS_FILE }, algorithm: 'weighted-round-robin' } }, 'targets from example-gateway/targets.json, followed live')

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
    `  curl -X POST ${base}/demo/b/down   # stop upstream b (also: up, error, hang, slow, ok)`,
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
