import type { MonitorState } from '../health/monitor'
import { CHANNEL, type Gathered, type GatherKind, type PrimaryMessage, type SharedEjection, type WorkerMessage } from './messages'

/** A worker as the hub sees it, whatever carries its messages (the IPC channel, a socket, a call in the same process). */
export interface HubPeer {
  /** The worker's id in the cluster. */
  readonly id: number
  readonly pid: number
  /** Best effort: a worker that is going away misses it, and its successor joins with the state. */
  send: (message: PrimaryMessage) => void
}

/** The state a hub that takes over starts from: what the worker that holds it knows. */
export interface HubSeed {
  health: Array<[string, MonitorState]>
  ejections: SharedEjection[]
}

/** The machine's shared state and the election of the checking worker, over any transport. */
export interface Hub {
  /** The worker that runs the active checks now; null while none has joined. */
  readonly checker: HubPeer | null
  /** The workers that joined and are still there, oldest first. */
  readonly peers: HubPeer[]
  receive: (peer: HubPeer, message: WorkerMessage) => void
  /** The peer is gone: its gatherings go on without it, and the next oldest checks if it did. */
  leave: (peer: HubPeer) => void
  /** Ends every gathering under way with what it has. */
  close: () => void
}

interface Gathering {
  requester: HubPeer
  /** The requester's id for it. */
  id: number
  pending: Set<HubPeer>
  data: Gathered[]
  timer: NodeJS.Timeout
}

function ejectionKey (e: SharedEjection): string {
  return e.pool + '\n' + e.target
}

/**
 * The hub of cluster mode (docs/cluster.md), whichever process holds it (the
 * node:cluster primary, or the worker that holds the machine's socket): it
 * keeps the last state of every health check and the ejections in force,
 * elects the worker that runs the active checks (the oldest joined one, the
 * next when it leaves), relays check states and ejections to every worker,
 * welcomes a worker that joins with the state as it is, and gathers metrics
 * and status reports. A gathering leaves out a worker that has not answered
 * within `gatherTimeout` ms.
 */
export function createHub (gatherTimeout: number, seed?: HubSeed): Hub {
  const joined = new Set<HubPeer>()
  const health = new Map<string, MonitorState>(seed?.health)
  const ejections = new Map<string, SharedEjection>(seed?.ejections.map((e) => [ejectionKey(e), e]))
  const gatherings = new Map<number, Gathering>()
  let checker: HubPeer | null = null
  let nextId = 1

  const others = (from: HubPeer, message: PrimaryMessage): void => {
    for (const peer of joined) if (peer !== from) peer.send(message)
  }

  const finish = (key: number): void => {
    const g = gatherings.get(key)
    if (g === undefined) return
    gatherings.delete(key)
    clearTimeout(g.timer)
    g.data.sort((a, b) => a.worker - b.worker)
    g.requester.send({ channel: CHANNEL, kind: 'gathered', id: g.id, data: g.data })
  }

  const gather = (requester: HubPeer, id: number, what: GatherKind): void => {
    const key = nextId++
    const timer = setTimeout(() => finish(key), gatherTimeout)
    timer.unref()
    gatherings.set(key, { requester, id, pending: new Set(joined), data: [], timer })
    for (const peer of joined) peer.send({ channel: CHANNEL, kind: 'collect', id: key, what })
  }

  const welcome = (peer: HubPeer): void => {
    joined.delete(peer)
    joined.add(peer)
    checker ??= peer
    const now = Date.now()
    for (const [key, e] of ejections) if (e.until <= now) ejections.delete(key)
    peer.send({ channel: CHANNEL, kind: 'welcome', checking: checker === peer, health: [...health], ejections: [...ejections.values()] })
  }

  return {
    get checker () { return checker },
    get peers () { return [...joined] },
    receive (peer, m) {
      switch (m.kind) {
        case 'hello':
          welcome(peer)
          break
        case 'health':
          // Only the elected worker's checks count: one that was replaced may still report a check it had begun.
          if (peer !== checker) return
          health.set(m.key, m.state)
          others(peer, m)
          break
        case 'eject': {
          const key = ejectionKey(m.ejection)
          const known = ejections.get(key)
          if (known === undefined || known.until < m.ejection.until) ejections.set(key, m.ejection)
          others(peer, m)
          break
        }
        case 'gather':
          gather(peer, m.id, m.what)
          break
        case 'collected': {
          const g = gatherings.get(m.id)
          if (g === undefined || !g.pending.delete(peer)) return
          g.data.push({ worker: peer.id, pid: peer.pid, data: m.data })
          if (g.pending.size === 0) finish(m.id)
          break
        }
      }
    },
    leave (peer) {
      if (!joined.delete(peer)) return
      for (const [key, g] of gatherings) if (g.pending.delete(peer) && g.pending.size === 0) finish(key)
      if (checker !== peer) return
      // The oldest worker left takes over the checks, one interval after the last one reported.
      const next = joined.values().next()
      checker = next.done === true ? null : next.value
      checker?.send({ channel: CHANNEL, kind: 'lead' })
    },
    close () {
      for (const key of [...gatherings.keys()]) finish(key)
    }
  }
}
