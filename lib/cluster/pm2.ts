import cluster from 'node:cluster'

/**
 * Whether this process is a worker of PM2's cluster mode, where PM2's daemon
 * is the node:cluster primary and runs none of the gateway's code: then no
 * clusterPrimary() can answer, and the workers elect a hub among themselves
 * at once rather than after `cluster.timeout`.
 */
export function underPm2 (env: NodeJS.ProcessEnv = process.env): boolean {
  return cluster.isWorker && env.pm_id !== undefined && (env.exec_mode === 'cluster_mode' || env.NODE_APP_INSTANCE !== undefined)
}
