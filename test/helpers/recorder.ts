import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** One request as an upstream received it. */
export interface Received {
  method: string
  url: string
  /** Header names lower-cased, values as they came (repeated headers joined by Node's rules). */
  headers: IncomingMessage['headers']
  body: Buffer
}

/**
 * An upstream that records every request byte for byte (method, path, headers,
 * body) and answers with the status `answer` gives, naming itself in
 * x-served-by. The tests of transparency compare what it got with what the
 * client sent.
 */
export class RecordingUpstream {
  readonly received: Received[] = []
  /** The status of the next answers. */
  status = 200
  port = 0
  private readonly server: Server
  private readonly sockets = new Set<Socket>()

  constructor (readonly id: string) {
    this.server = createServer((req, res) => this.handle(req, res))
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  get last (): Received {
    const last = this.received.at(-1)
    if (last === undefined) throw new Error(`${this.id} received nothing`)
    return last
  }

  async start (): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()))
    this.port = (this.server.address() as AddressInfo).port
    return this
  }

  async stop (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      this.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) })
      res.writeHead(this.status, { 'content-type': 'text/plain', 'x-served-by': this.id })
      res.end(this.id)
    })
  }
}
