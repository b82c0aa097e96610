import cluster, { type Worker } from 'node:cluster'
import { createHub, type HubPeer } from './hub'
import { isOurs, type WorkerMessage } from './messages'

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

/**
 * The primary's side of cluster mode (docs/cluster.md): one line in the
 * primary of a node:cluster gateway. It holds the hub (hub.ts) and carries
 * its messages over node:cluster's IPC channel. It holds no pools and opens
 * no connection to an upstream.
 */
export function clusterPrimary (options: ClusterPrimaryOptions = {}): ClusterPrimary {
  if (!cluster.isPrimary) throw new Error('clusterPrimary() belongs in the primary process of node:cluster')
  const hub = createHub(options.gatherTimeout ?? 1500)
  const peers = new Map<Worker, HubPeer>()

  const peerOf = (worker: Worker): HubPeer => {
    let peer = peers.get(worker)
    if (peer === undefined) {
      peer = {
        id: worker.id,
        pid: worker.process.pid ?? 0,
        send (message) {
          if (worker.isConnected()) worker.send(message, () => {})
        }
      }
      peers.set(worker, peer)
    }
    return peer
  }

  const onMessage = (worker: Worker, message: unknown): void => {
    if (isOurs(message)) hub.receive(peerOf(worker), message as WorkerMessage)
  }

  const onExit = (worker: Worker): void => {
    const peer = peers.get(worker)
    if (peer === undefined) return
    peers.delete(worker)
    hub.leave(peer)
  }

  cluster.on('message', onMessage)
  cluster.on('exit', onExit)
  cluster.on('disconnect', onExit)
  return {
    get checker () { return hub.checker?.id ?? null },
    get workers () { return hub.peers.map((p) => p.id) },
    close () {
      cluster.off('message', onMessage)
      cluster.off('exit', onExit)
      cluster.off('disconnect', onExit)
      hub.close()
    }
  }
}
