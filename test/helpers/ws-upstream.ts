import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'

/**
 * A real WebSocket upstream: an HTTP server (answering plain requests with its
 * name, their method, path and body) and a ws server that greets each socket with its name and echoes every
 * message back as it came (text as text, binary as binary). `refuse` makes it
 * answer upgrades with that status instead of switching protocols.
 */
export class WsUpstream {
  readonly server: Server
  readonly wss: WebSocketServer
  url = ''
  /** The request headers of every upgrade it accepted, in order. */
  readonly upgrades: IncomingHttpHeaders[] = []
  /** Paths (with query) of the upgrades it accepted. */
  readonly paths: string[] = []
  refuse = 0
  /** Open sockets now. */
  get open (): number {
    return this.wss.clients.size
  }

  /** Resolves each time a socket of this upstream closes. */
  readonly closed: Array<() => void> = []

  constructor (readonly name: string) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        res.setHeader('x-served-by', name)
        res.end(`${name} ${req.method ?? ''} ${req.url ?? ''}${body === '' ? '' : ' ' + body}`)
      })
    })
    this.wss = new WebSocketServer({ noServer: true })
    this.server.on('upgrade', (req, socket, head) => {
      if (this.refuse !== 0) {
        socket.end(`HTTP/1.1 ${this.refuse} Refused\r\nContent-Type: text/plain\r\nX-Served-By: ${name}\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused`)
        return
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.upgrades.push(req.headers)
        this.paths.push(req.url ?? '')
        ws.on('message', (data, binary) => { ws.send(data, { binary }) })
        ws.on('close', () => { for (const f of this.closed.splice(0)) f() })
        ws.send(`hello from ${name}`)
      })
    })
  }

  async start (): Promise<this> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  /** Resolves when every socket of this upstream has closed. */
  async allClosed (): Promise<void> {
    while (this.open > 0) await new Promise<void>((resolve) => this.closed.push(resolve))
  }

  async stop (): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate()
    this.wss.close()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** A ws client through the gateway; resolves once open with the greeting that names the upstream. */
export async function connectWs (url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket, upstream: string }> {
  const ws = new WebSocket(url, { headers })
  const greeting = new Promise<string>((resolve, reject) => {
    ws.once('message', (data) => resolve(String(data)))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${String(res.statusCode)}`)))
  })
  const text = await greeting
  return { ws, upstream: text.replace('hello from ', '') }
}

/** The status and body a ws client gets when the gateway does not switch protocols. */
export async function refusedUpgrade (url: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string, headers: IncomingHttpHeaders }> {
  const ws = new WebSocket(url, { headers })
  return await new Promise((resolve, reject) => {
    ws.once('open', () => { ws.terminate(); reject(new Error('the upgrade was accepted')) })
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
  })
}

/** Resolves when ws has closed. */
export async function closedWs (ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return 0
  const [code] = await once(ws, 'close') as [number]
  return code
}
