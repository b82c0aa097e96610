import type { FastifyInstance } from 'fastify'
import type { LoadBalancer } from '../route/load-balancer'
import type { MachineView } from '../observability/options'
import { machineMetrics, workerMetrics } from './machine-metrics'
import { machineStatus, type WorkerStatus } from './machine-status'
import { statusReport } from '../observability/status'
import type { ResolvedCluster } from './options'
import { ClusterWorker } from './worker'

/**
 * Cluster mode in a worker (`cluster: true`): joins the machine when the
 * gateway is ready, leaves on close, and returns the machine's view for the
 * metrics route. A process that is not a node:cluster worker runs alone, as
 * without the option, and says so.
 */
export function joinCluster (fastify: FastifyInstance, lb: LoadBalancer, options: ResolvedCluster, hideUrls: boolean): MachineView | null {
  if (!ClusterWorker.available()) {
    fastify.log.warn('fastify-lb: cluster mode, but this process is not a node:cluster worker: it runs alone')
    return null
  }
  const worker = new ClusterWorker(lb, options, fastify.log)
  const own = async (): Promise<unknown> => lb.metrics === null ? null : await workerMetrics(lb.metrics, options.metrics, worker.id)
  worker.provide('metrics', own)
  worker.provide('status', (): WorkerStatus => ({ checking: lb.health.checking, report: statusReport(lb, hideUrls, null) }))
  fastify.addHook('onReady', async () => { await worker.join() })
  fastify.addHook('onClose', async () => { worker.close() })
  return {
    async metrics (registry) {
      // Without a primary's answer, this worker's own series, labelled as they would be with it.
      const all = await worker.gather('metrics') ?? [{ worker: worker.id, pid: process.pid, data: await own() }]
      return await machineMetrics(all, registry.contentType)
    },
    async status (report) {
      const alone: WorkerStatus = { checking: lb.health.checking, report }
      return machineStatus(report, worker.id, await worker.gather('status') ?? [{ worker: worker.id, pid: process.pid, data: alone }])
    }
  }
}
