import type { PoolStatus, StatusReport, TargetStatus } from '../observability/status-report'
import type { Gathered } from './messages'

type Counts<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T]

const TARGET_SUMS: ReadonlyArray<Counts<TargetStatus>> = ['inFlight', 'tunnels', 'requests', 'failures', 'aborted']
const POOL_SUMS: ReadonlyArray<Counts<PoolStatus>> = ['inFlight', 'noTarget']

function add<T extends object> (into: T, from: T, keys: ReadonlyArray<Counts<T>>): void {
  const to = into as Record<Counts<T>, number>
  const by = from as Record<Counts<T>, number>
  for (const key of keys) to[key] = (to[key] ?? 0) + (by[key] ?? 0)
}

function addRecord (into: Record<string, number>, from: Record<string, number> | null): void {
  if (from === null) return
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value
}

/** What one worker answers when the status page gathers: its report, and whether it runs the checks. */
export interface WorkerStatus {
  checking: boolean
  report: StatusReport
}

/**
 * The machine's status from this worker's report and every worker's (cluster
 * mode): health, ejections and weights are this worker's, which every worker
 * shares; counters and in-flight counts are summed over the workers, and each
 * target lists the in-flight count of every worker.
 */
export function machineStatus (own: StatusReport, self: number, gathered: readonly Gathered[]): StatusReport {
  const workers: NonNullable<StatusReport['cluster']>['workers'] = []
  const pools = new Map(own.pools.map((p) => [p.name, p]))
  for (const pool of own.pools) for (const t of pool.targets) t.workers = []
  for (const g of gathered) {
    const data = g.data as WorkerStatus | null
    const report = data?.report
    if (report === undefined || !Array.isArray(report.pools)) continue
    let inFlight = 0
    for (const peer of report.pools) {
      inFlight += peer.inFlight
      const pool = pools.get(peer.name)
      if (pool === undefined) continue
      if (g.worker !== self) {
        add(pool, peer, POOL_SUMS)
        addRecord(pool.retries, peer.retries)
        addRecord(pool.overloaded, peer.overloaded)
        addRecord(pool.fallbacks as Record<string, number> | null ?? {}, pool.fallbacks === null ? null : peer.fallbacks)
        if (pool.queued !== null && peer.queued !== null) pool.queued += peer.queued
      }
      const targets = new Map(pool.targets.map((t) => [t.id, t]))
      for (const t of peer.targets) {
        const target = targets.get(t.id)
        if (target === undefined) continue
        if (g.worker !== self) add(target, t, TARGET_SUMS)
        target.workers?.push({ worker: g.worker, inFlight: t.inFlight })
      }
    }
    workers.push({ id: g.worker, pid: g.pid, checking: data?.checking === true, inFlight })
  }
  return { ...own, cluster: { worker: self, workers } }
}
