import type { FastifyInstance } from 'fastify'
import type { LoadBalancer } from '../route/load-balancer'
import { LbMetrics } from './metrics'
import type { MachineView, ResolvedMetricsOptions, ResolvedStatusOptions } from './options'
import { addStatusRoute } from './status'
import { StatusHistory } from './history'

function addMetricsRoute (fastify: FastifyInstance, metrics: LbMetrics, path: string, options: ResolvedMetricsOptions, machine: MachineView | null): void {
  const registry = metrics.registry
  fastify.route({
    method: 'GET',
    url: path,
    onRequest: options.onRequest.length > 0 ? options.onRequest : undefined,
    async handler (_request, reply) {
      reply.type(registry.contentType).header('cache-control', 'no-store')
      return machine === null ? await registry.metrics() : await machine.metrics(registry)
    }
  })
}

function addMetrics (fastify: FastifyInstance, lb: LoadBalancer, options: ResolvedMetricsOptions, machine: MachineView | null): LbMetrics {
  const metrics = new LbMetrics(options)
  lb.metrics = metrics.registry
  lb.eachPool((pool) => metrics.attach(pool))
  lb.eachSplit((split) => metrics.attachSplit(split))
  metrics.watchHealth(lb.health)
  if (options.path !== null) addMetricsRoute(fastify, metrics, options.path, options, machine)
  return metrics
}

/** Sets up the metrics (collectors on every pool, and their route) and the status route, as configured. */
export function addObservability (
  fastify: FastifyInstance,
  lb: LoadBalancer,
  options: { metrics: ResolvedMetricsOptions | null, status: ResolvedStatusOptions | null },
  machine: MachineView | null = null
): void {
  const metrics = options.metrics === null ? null : addMetrics(fastify, lb, options.metrics, machine)
  const status = options.status
  if (status === null) return
  let history: StatusHistory | null = null
  if (status.history !== null) {
    // One timer for every pool, from ready to close; it reads counters, so requests do nothing for it.
    const sampler = new StatusHistory(lb, status.history, metrics)
    fastify.addHook('onReady', async () => { sampler.start() })
    fastify.addHook('onClose', async () => { sampler.stop() })
    history = sampler
  }
  addStatusRoute(fastify, lb, status, history, machine)
}
