/**
 * The gateway of npm run bench:cluster: a node:cluster primary with
 * clusterPrimary() and BENCH_WORKERS workers over the targets of BENCH_TARGETS
 * (JSON URLs), with active checks every BENCH_INTERVAL ms; BENCH_CLUSTER=0
 * leaves cluster mode off, to compare. Prints the shared port once every worker listens.
 */
import cluster from 'node:cluster'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import lb, { clusterPrimary } from '../lib/index'

async function worker (): Promise<void> {
  const targets = JSON.parse(process.env.BENCH_TARGETS ?? '[]') as string[]
  const app = Fastify({ logger: false })
  await app.register(lb, {
    cluster: process.env.BENCH_CLUSTER !== '0',
    pools: {
      main: {
        targets,
        algorithm: 'round-robin',
        healthCheck: { path: '/', interval: Number(process.env.BENCH_INTERVAL ?? 5000), jitter: 0 }
      }
    }
  })
  app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  await app.listen({ port: 0, host: '127.0.0.1' })
  process.send?.({ port: (app.server.address() as AddressInfo).port })
}

function primary (): void {
  clusterPrimary()
  const count = Number(process.env.BENCH_WORKERS ?? 1)
  let ready = 0
  for (let i = 0; i < count; i++) {
    cluster.fork().on('message', (m: { port?: number }) => {
      if (m.port !== undefined && ++ready === count) process.stdout.write(`${m.port}\n`)
    })
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL')
    process.exit(0)
  })
}

if (cluster.isPrimary) primary()
else worker().catch((err: unknown) => { console.error(err); process.exit(1) })
