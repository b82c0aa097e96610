import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'

/**
 * How a fault server misbehaves once it has read a request's head:
 * - `ok`: a valid answer (x-served-by names the server);
 * - `head-only`: headers promising 1000 bytes, none of them, then the connection is cut;
 * - `half-body`: headers promising 1000 bytes, 100 of them, then the connection is cut;
 * - `half-large`: headers promising 100,000 bytes (more than the gateway holds whole), 100 of them, then the connection is cut;
 * - `half-chunked`: a chunked answer cut after its first chunk, without the last one;
 * - `reset`: the connection is reset (TCP RST) without a byte of answer;
 * - `close`: the connection is closed (FIN) without a byte of answer;
 * - `garbage`: bytes that are not HTTP;
 * - `bad-status`: a well-formed answer with a status outside 100-599;
 * - `silent`: nothing, ever (the request is left unanswered, the connection open);
 * - `slow-headers`: the head dribbles out in 10 pieces, `delayMs` apart;
 * - `slow-body`: the head at once, then the body in 10 chunks, `delayMs` apart.
 */
export type FaultMode = 'ok' | 'head-only' | 'half-body' | 'half-large' | 'half-chunked' | 'reset' | 'close' | 'garbage' | 'bad-status' | 'silent' | 'slow-headers' | 'slow-body'

const HEAD_END = '\r\n\r\n'

function tenPieces (text: string): string[] {
  const size = Math.ceil(text.length / 10)
  return Array.from({ length: 10 }, (_, i) => text.slice(i * size, (i + 1) * size)).filter((piece) => piece !== '')
}

/**
 * A raw TCP server speaking just enough HTTP/1.1 to misbehave in one precise way.
 * It counts the requests it read and keeps track of its open connections, so a
 * test can check that the gateway let go of every one of them.
 */
export class FaultServer {
  mode: FaultMode
  /** Pause between the pieces of slow answers, in ms. */
  delayMs = 20
  /** Request heads read so far. */
  requests = 0
  port = 0
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor (readonly id: string, mode: FaultMode = 'ok') {
    this.mode = mode
    this.server = createServer((socket) => this.accept(socket))
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Connections the server holds open right now. */
  get connections (): number {
    return this.sockets.size
  }

  async start (): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()))
    this.port = (this.server.address() as AddressInfo).port
    return this
  }

  async stop (): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private accept (socket: Socket): void {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    socket.on('error', () => {})
    let head = ''
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1')
      const end = head.indexOf(HEAD_END)
      if (end === -1) return
      // One request per connection is enough for every fault; a body, if any, is ignored.
      socket.off('data', onData)
      socket.resume()
      this.requests++
      this.answer(socket)
    }
    socket.on('data', onData)
  }

  private later (fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      fn()
    }, ms)
    this.timers.add(timer)
  }

  /** Writes pieces one after the other, `delayMs` apart, then calls done. */
  private dribble (socket: Socket, pieces: string[], done: () => void): void {
    const next = (i: number): void => {
      if (socket.destroyed) return
      if (i === pieces.length) {
        done()
        return
      }
      socket.write(pieces[i])
      this.later(() => next(i + 1), this.delayMs)
    }
    next(0)
  }

  private answer (socket: Socket): void {
    const served = `x-served-by: ${this.id}\r\n`
    switch (this.mode) {
      case 'ok':
        socket.end(`HTTP/1.1 200 OK\r\n${served}content-length: 2\r\nconnection: close\r\n\r\nok`)
        return
      case 'head-only':
        socket.write(`HTTP/1.1 200 OK\r\n${served}content-type: text/plain\r\ncontent-length: 1000\r\n\r\n`)
        this.later(() => socket.destroy(), this.delayMs)
        return
      case 'half-body':
        socket.write(`HTTP/1.1 200 OK\r\n${served}content-type: text/plain\r\ncontent-length: 1000\r\n\r\n` + 'x'.repeat(100))
        this.later(() => socket.destroy(), this.delayMs)
        return
      case 'half-large':
        socket.write(`HTTP/1.1 200 OK\r\n${served}content-type: text/plain\r\ncontent-length: 100000\r\n\r\n` + 'x'.repeat(100))
        this.later(() => socket.destroy(), this.delayMs)
        return
      case 'half-chunked':
        socket.write(`HTTP/1.1 200 OK\r\n${served}content-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n64\r\n${'x'.repeat(100)}\r\n`)
        this.later(() => socket.destroy(), this.delayMs)
        return
      case 'reset':
        socket.resetAndDestroy()
        return
      case 'close':
        socket.end()
        return
      case 'garbage':
        socket.end('\x00\x01 this is not HTTP at all \xff\xfe\r\n\r\n')
        return
      case 'bad-status':
        socket.end(`HTTP/1.1 999 Whatever\r\n${served}content-length: 2\r\nconnection: close\r\n\r\nno`)
        return
      case 'silent':
        return
      case 'slow-headers': {
        const headText = `HTTP/1.1 200 OK\r\n${served}content-length: 2\r\nconnection: close\r\n\r\n`
        this.dribble(socket, tenPieces(headText), () => socket.end('ok'))
        return
      }
      case 'slow-body':
        socket.write(`HTTP/1.1 200 OK\r\n${served}content-type: text/plain\r\ncontent-length: 100\r\nconnection: close\r\n\r\n`)
        this.dribble(socket, tenPieces('0123456789'.repeat(10)), () => socket.end())
    }
  }
}
