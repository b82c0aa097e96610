import type { Socket } from 'node:net'

/** A peer that sends more than this without a newline is not one of ours: its connection ends. */
const MAX_FRAME = 64 * 1024 * 1024

/** Sends one message as a line of JSON (JSON escapes every newline inside strings). */
export function writeFrame (socket: Socket, message: unknown): void {
  if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(message) + '\n')
}

/** Calls `onMessage` with each line of JSON that arrives; a line that is not JSON ends the connection. */
export function readFrames (socket: Socket, onMessage: (message: unknown) => void): void {
  let buffered = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    buffered += chunk
    let start = 0
    let end = buffered.indexOf('\n')
    while (end !== -1) {
      let message: unknown
      try {
        message = JSON.parse(buffered.slice(start, end))
      } catch {
        socket.destroy()
        return
      }
      onMessage(message)
      start = end + 1
      end = buffered.indexOf('\n', start)
    }
    buffered = buffered.slice(start)
    if (buffered.length > MAX_FRAME) socket.destroy()
  })
}
