import { isOurs, type PrimaryMessage, type WorkerMessage } from './messages'

/** What a worker's link tells it. */
export interface LinkEvents {
  message: (message: PrimaryMessage) => void
  /** The hub is gone (its process died or gave the socket up): the worker joins again. */
  lost: () => void
}

/** A worker's way to the hub: the IPC channel to its primary, a socket, or the hub in its own process. */
export interface Link {
  /** For logs: what the worker is joined through. */
  readonly via: string
  readonly open: boolean
  send: (message: WorkerMessage) => void
  close: () => void
}

/** The IPC channel to the node:cluster primary, where clusterPrimary() holds the hub. */
export function ipcLink (events: LinkEvents): Link {
  const onMessage = (message: unknown): void => {
    if (isOurs(message)) events.message(message as PrimaryMessage)
  }
  process.on('message', onMessage)
  return {
    via: 'primary',
    get open () { return process.connected },
    send (message) {
      if (process.connected && process.send !== undefined) process.send(message, undefined, {}, () => {})
    },
    close () { process.off('message', onMessage) }
  }
}
