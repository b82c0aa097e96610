import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** How a demo upstream answers: normally, with a 500, never, after a delay, or when the test releases it. */
export type UpstreamMode = 'ok' | 'error' | 'hang' | 'slow' | 'hold'

/**
 * A small HTTP server that names itself in every answer (header x-served-by and
 * a JSON body), serves /health, and can be told to fail: the example gateway's
 * demo upstreams and the test suite's real upstreams.
 */
export class DemoUpstream {
  readonly id: string
  mode: UpstreamMode = 'ok'
  /** Delay of 'slow' answers in ms. */
  delayMs = 200
  /** When set, the status of every answer but /health's (e.g. 503 to make a gateway retry); 'error' still answers 500. */
  status: number | null = null
  /** Requests answered or accepted, by path. */
  hits = 0
  /** Health checks received. */
  healthHits = 0
  /** Requests accepted and neither answered nor cut off yet. */
  active = 0
  /** The most requests it held at once. */
  peak = 0
  /** When set, every request's path is appended as it arrives (a test may share one log between upstreams). */
  log: string[] | null = null
  /** When set, counts requests held by a group of upstreams together, and the most at once. */
  group: { active: number, peak: number } | null = null
  port = 0
  private server: Server | null = null
  /** Answers of 'hold' requests, sent by release(). */
  private held: Array<() => void> = []
  private readonly sockets = new Set<Socket>()
  private readonly host: string

  constructor (id: string, host = '127.0.0.1') {
    this.id = id
    this.host = host
  }

  get url (): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`
  }

  get listening (): boolean {
    return this.server !== null
  }

  /** Listens on the given port, or on the port it had before, or on a free one. */
  async start (port = this.port): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res))
    server.keepAliveTimeout = 5000
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, this.host, () => resolve())
    })
    this.port = (server.address() as AddressInfo).port
    this.server = server
    return this
  }

  /** Answers every request held so far ('hold' mode), in the order they came. */
  release (): void {
    const held = this.held
    this.held = []
    for (const answer of held) answer()
  }

  /** Stops listening and cuts every open connection, as a crashed process would. */
  async stop (): Promise<void> {
    const server = this.server
    if (server === null) return
    this.server = null
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const path = req.url ?? '/'
      if (path === '/health') {
        this.healthHits++
        const healthy = this.mode !== 'error'
        res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'x-served-by': this.id })
        res.end(JSON.stringify({ id: this.id, healthy }))
        return
      }
      this.hits++
      this.active++
      if (this.active > this.peak) this.peak = this.active
      this.log?.push(path)
      const group = this.group
      if (group !== null) {
        if (++group.active > group.peak) group.peak = group.active
        res.once('close', () => { group.active-- })
      }
      res.once('close', () => { this.active-- })
      if (this.mode === 'hang') return
      const body = JSON.stringify({
        id: this.id,
        method: req.method,
        url: path,
        host: req.headers.host,
        body: Buffer.concat(chunks).toString('utf8')
      })
      const answer = (): void => {
        if (res.destroyed) return
        res.writeHead(this.mode === 'error' ? 500 : this.status ?? 200, { 'content-type': 'application/json', 'x-served-by': this.id })
        res.end(body)
      }
      if (this.mode === 'slow') setTimeout(answer, this.delayMs)
      else if (this.mode === 'hold') this.held.push(answer)
      else answer()
    })
  }
}

/** Starts demo upstreams named by ids on loopback ports chosen by the OS. */
export async function startUpstreams (ids: string[]): Promise<DemoUpstream[]> {
  return Promise.all(ids.map(async (id) => new DemoUpstream(id).start(0)))
}
