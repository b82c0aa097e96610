import cluster, { type Worker } from 'node:cluster'
import type { MonitorState } from '../health/monitor'
import { CHANNEL, isOurs, type Gathered, type GatherKind, type PrimaryMessage, type SharedEjection, type WorkerMessage } from './messages'

export interface ClusterPrimaryOptions {
  /** ms a gathering (a scrape, the status page) waits for the workers' answers; those still missing are left out (default 1500). */
  gatherTimeout?: number
}

/** The primary's side of cluster mode, as `clusterPrimary()` returns it. */
export interface ClusterPrimary {
  /** The id of the worker that runs the active checks now; null while no worker has joined. */
  readonly checker: number | null
  /** The ids of the workers that joined and are still there, oldest first. */
  readonly workers: number[]
  /** Stops listening to the workers (they go on alone). */
  close: () => void
}

interface Gathering {
  requester: Worker
  /** The requester's id for it. */
  id: number
  pending: Set<number>
  data: Gathered[]
  timer: NodeJS.Timeout
}

function send (worker: Worker, message: PrimaryMessage): void {
  // A worker that is going away misses it; its successor joins with the state.
  if (worker.isConnected()) worker.send(message, () => {})
}

/**
 * The primary's side of cluster mode (docs/cluster.md): one line in the
 * primary of a node:cluster gateway. It keeps the machine's shared state (the
 * last state of every health check, the ejections in force), elects the
 * worker that runs the active checks (the oldest joined one, the next when it
 * exits), relays check states and ejections to every worker, welcomes a worker
 * that joins with the state as it is, and gathers metrics and status reports.
 * It holds no pools and opens no connection to an upstream.
 */
export function clusterPrimary (options: ClusterPrimaryOptions = {}): ClusterPrimary {
  if (!cluster.isPrimary) throw new Error('clusterPrimary() belongs in the primary process of node:cluster')
  const gatherTimeout = options.gatherTimeout ?? 1500
  const joined = new Map<number, Worker>()
  const health = new Map<string, MonitorState>()
  const ejections = new Map<string, SharedEjection>()
  const gatherings = new Map<number, Gathering>()
  let checker: number | null = null
  let nextId = 1

  const others = (from: Worker, message: PrimaryMessage): void => {
    for (const worker of joined.values()) if (worker !== from) send(worker, message)
  }

  const finish = (key: number): void => {
    const g = gatherings.get(key)
    if (g === undefined) return
    gatherings.delete(key)
    clearTimeout(g.timer)
    g.data.sort((a, b) => a.worker - b.worker)
    send(g.requester, { channel: CHANNEL, kind: 'gathered', id: g.id, data: g.data })
  }

  const gather = (requester: Worker, id: number, what: GatherKind): void => {
    const key = nextId++
    const timer = setTimeout(() => finish(key), gatherTimeout)
    timer.unref()
    gatherings.set(key, { requester, id, pending: new Set(joined.keys()), data: [], timer })
    for (const worker of joined.values()) send(worker, { channel: CHANNEL, kind: 'collect', id: key, what })
  }

  const welcome = (worker: Worker): void => {
    joined.delete(worker.id)
    joined.set(worker.id, worker)
    if (checker === null) checker = worker.id
    const now = Date.now()
    for (const [key, e] of ejections) if (e.until <= now) ejections.delete(key)
    send(worker, { channel: CHANNEL, kind: 'welcome', checking: checker === worker.id, health: [...health], ejections: [...ejections.values()] })
  }

  const onMessage = (worker: Worker, message: unknown): void => {
    if (!isOurs(message)) return
    const m = message as WorkerMessage
    switch (m.kind) {
      case 'hello':
        welcome(worker)
        break
      case 'health':
        // Only the elected worker's checks count: one that was replaced may still report a check it had begun.
        if (worker.id !== checker) return
        health.set(m.key, m.state)
        others(worker, m)
        break
      case 'eject': {
        const key = m.ejection.pool + '\n' + m.ejection.target
        const known = ejections.get(key)
        if (known === undefined || known.until < m.ejection.until) ejections.set(key, m.ejection)
        others(worker, m)
        break
      }
      case 'gather':
        gather(worker, m.id, m.what)
        break
      case 'collected': {
        const g = gatherings.get(m.id)
        if (g === undefined || !g.pending.delete(worker.id)) return
        g.data.push({ worker: worker.id, pid: worker.process.pid ?? 0, data: m.data })
        if (g.pending.size === 0) finish(m.id)
        break
      }
    }
  }

  const onExit = (worker: Worker): void => {
    if (!joined.delete(worker.id)) return
    for (const [key, g] of gatherings) if (g.pending.delete(worker.id) && g.pending.size === 0) finish(key)
    if (checker !== worker.id) return
    // The oldest worker left takes over the checks, one interval after the last one reported.
    const next = joined.values().next()
    checker = next.done === true ? null : next.value.id
    if (next.done !== true) send(next.value, { channel: CHANNEL, kind: 'lead' })
  }

  cluster.on('message', onMessage)
  cluster.on('exit', onExit)
  cluster.on('disconnect', onExit)
  return {
    get checker () { return checker },
    get workers () { return [...joined.keys()] },
    close () {
      cluster.off('message', onMessage)
      cluster.off('exit', onExit)
      cluster.off('disconnect', onExit)
      for (const key of [...gatherings.keys()]) finish(key)
    }
  }
}
