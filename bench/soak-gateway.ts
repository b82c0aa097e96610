/**
 * The gateway of the soak run (npm run soak), in a process of its own so that
 * its memory and handles are its own. Three pools over the same upstreams
 * (least connections, consistent hash, cookie affinity), with active checks,
 * outlier detection, slow start and retries. Loopback-only control routes
 * under /soak/ report memory (after a full GC) and change weights. On SIGTERM
 * it calls app.close(), prints what is left, and must then exit on its own.
 */
import Fastify from 'fastify'
import lb from '../lib/index'
import type { PoolOptions } from '../lib/options/resolve'

export interface SoakStats {
  rss: number
  heapUsed: number
  heapTotal: number
  external: number
  /** Active handles by type (sockets, servers, timers). */
  handles: Record<string, number>
  /** Client connections the gateway holds open. */
  connections: number
  pools: Record<string, { inFlight: number, activeRetries: number, targets: Record<string, string> }>
}

const targets = JSON.parse(process.env.SOAK_UPSTREAMS ?? '[]') as Array<{ id: string, url: string }>
const gc = (globalThis as { gc?: () => void }).gc

function handles (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1
  return counts
}

async function main (): Promise<void> {
  const app = Fastify({ logger: { level: 'warn' } })
  const common: PoolOptions = {
    targets,
    timeout: 2000,
    retry: JSON.parse(process.env.SOAK_RETRY ?? '{}') as PoolOptions['retry'],
    healthCheck: { interval: 500, timeout: 300, unhealthyThreshold: 2, healthyThreshold: 2 },
    outlierDetection: { consecutiveFailures: 5, baseEjectionTime: 2000, maxEjectionTime: 10_000 },
    slowStart: { window: 3000 }
  }
  await app.register(lb, {
    connectTimeout: 1000,
    pools: {
      web: common,
      hash: { ...common, algorithm: 'consistent-hash', hashKey: { header: 'x-user' }, balanceFactor: 1.5 },
      sticky: { ...common, algorithm: 'round-robin', affinity: { secret: 'soak-affinity-secret-0123456789' } }
    }
  })
  for (const pool of ['web', 'hash', 'sticky']) app.all(`/${pool}/*`, { config: { upstream: pool } }, app.lb.forward)

  app.get('/soak/stats', async (): Promise<SoakStats> => {
    gc?.()
    const memory = process.memoryUsage()
    const connections = await new Promise<number>((resolve) => app.server.getConnections((_err, n) => resolve(n)))
    const pools: SoakStats['pools'] = {}
    for (const pool of app.lb.allPools()) {
      pools[pool.name] = {
        inFlight: pool.inFlight,
        activeRetries: pool.activeRetries,
        targets: Object.fromEntries(pool.targets.map((t) => [t.id, `${t.state} w${t.weight}`]))
      }
    }
    return { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external, handles: handles(), connections, pools }
  })
  app.post<{ Params: { pool: string, id: string, weight: string } }>('/soak/weight/:pool/:id/:weight', async (request) => {
    app.lb.pool(request.params.pool).setWeight(request.params.id, Number(request.params.weight))
    return { ok: true }
  })

  process.once('SIGTERM', () => {
    const started = Date.now()
    app.close().then(() => {
      // Printed once closed; the parent then waits for the process to exit by itself.
      process.stdout.write(JSON.stringify({ closedMs: Date.now() - started, handles: handles() }) + '\n')
    }, (err: unknown) => {
      process.stderr.write(String(err) + '\n')
      process.exitCode = 1
    })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 }) + '\n')
}

main().catch((err: unknown) => {
  process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n')
  process.exit(1)
})
