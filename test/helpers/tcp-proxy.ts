import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

/**
 * A TCP relay on loopback to one local port. It notes the HTTP/1.1 request
 * lines clients send and the status lines the server answers with, and can
 * cut every connection at once, as a network fault or a middlebox would.
 */
export class TcpProxy {
  /** "METHOD /path" of each request relayed, in order. */
  readonly requests: string[] = []
  /** Status code of each answer relayed, in order. */
  readonly statuses: number[] = []
  private readonly sockets = new Set<Socket>()
  private readonly server: Server
  private port = 0

  constructor (private readonly targetPort: number) {
    this.server = createServer((client) => { this.relay(client) })
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async start (): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()))
    this.port = (this.server.address() as AddressInfo).port
    return this
  }

  /** Requests relayed for this path. */
  count (path: string): number {
    return this.requests.filter((r) => r.endsWith(` ${path}`)).length
  }

  /** Destroys every open connection, both sides. */
  cut (): void {
    for (const socket of this.sockets) socket.destroy()
  }

  async close (): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private relay (client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1')
    for (const socket of [client, upstream]) {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
      // A cut or a reset on one side closes the other; the error itself is expected.
      socket.on('error', () => {})
    }
    client.on('data', (chunk: Buffer) => {
      for (const [, method, path] of chunk.toString('latin1').matchAll(/(?:^|\r\n)([A-Z]+) (\S+) HTTP\/1\.1\r\n/g)) this.requests.push(`${method} ${path}`)
    })
    upstream.on('data', (chunk: Buffer) => {
      for (const [, status] of chunk.toString('latin1').matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)) this.statuses.push(Number(status))
    })
    client.pipe(upstream)
    upstream.pipe(client)
    client.once('close', () => upstream.destroy())
    upstream.once('close', () => client.destroy())
  }
}
