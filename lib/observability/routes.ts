import type { FastifyInstance } from 'fastify'
import type { LoadBalancer } from '../route/load-balancer'
import { LbMetrics } from './metrics'
import type { ResolvedMetricsOptions, ResolvedStatusOptions } from './options'
import { addStatusRoute } from './status'

function addMetricsRoute (fastify: FastifyInstance, metrics: LbMetrics, path: string, options: ResolvedMetricsOptions): void {
  const registry = metrics.registry
  fastify.route({
    method: 'GET',
    url: path,
    onRequest: options.onRequest.length > 0 ? options.onRequest : undefined,
    async handler (_request, reply) {
      reply.type(registry.contentType).header('cache-control', 'no-store')
      return await registry.metrics()
    }
  })
}

/** Sets up the metrics (collectors on every pool, and their route) and the status route, as configured. */
export function addObservability (
  fastify: FastifyInstance,
  lb: LoadBalancer,
  options: { metrics: ResolvedMetricsOptions | null, status: ResolvedStatusOptions | null }
): void {
  const metricsOptions = options.metrics
  if (metricsOptions !== null) {
    const metrics = new LbMetrics(metricsOptions)
    lb.metrics = metrics.registry
    lb.eachPool((pool) => metrics.attach(pool))
    metrics.watchHealth(lb.health)
    if (metricsOptions.path !== null) addMetricsRoute(fastify, metrics, metricsOptions.path, metricsOptions)
  }
  if (options.status !== null) addStatusRoute(fastify, lb, options.status)
}
