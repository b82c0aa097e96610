import { connect } from 'node:net'
import { describeSocketError, type CancelCheck, type CheckDone, type CheckEndpoint } from './endpoint'

/** Passes when a TCP connection opens within timeoutMs; the connection is closed at once. */
export function tcpCheck (endpoint: CheckEndpoint, timeoutMs: number, done: CheckDone): CancelCheck {
  let open = true
  const socket = connect({ host: endpoint.hostname, port: endpoint.port })
  const finish = (error: string | undefined): void => {
    if (!open) return
    open = false
    clearTimeout(timer)
    socket.destroy()
    done(error)
  }
  const timer = setTimeout(() => finish('timeout'), timeoutMs)
  timer.unref()
  socket.once('connect', () => finish(undefined))
  socket.on('error', (err) => finish(describeSocketError(err)))
  return () => {
    open = false
    clearTimeout(timer)
    socket.destroy()
  }
}
