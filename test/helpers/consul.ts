import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'

/** One registered instance of a service, as a test describes it. */
export interface ConsulInstance {
  /** Service ID (default `<service>-<port>`). */
  id?: string
  /** Service.Address; empty means "use the node's address". */
  address: string
  port: number
  /** The node's address (default 127.0.0.1). */
  nodeAddress?: string
  tags?: string[]
  meta?: Record<string, string>
  /** Service.Weights.Passing (default 1). */
  weight?: number
  /** The aggregate status of the instance's checks (default 'passing'). */
  status?: 'passing' | 'warning' | 'critical'
}

/** A health query as the server received it. */
export interface SeenQuery {
  service: string
  query: URLSearchParams
  token: string | undefined
  /** Whether the server held it as a blocking query. */
  blocked: boolean
}

interface Waiter {
  service: string
  wake: () => void
}

/** Go's time.ParseDuration for the units Consul's `wait` takes; null when invalid. */
function parseWait (text: string): number | null {
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) return null
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let ms = 0
  for (const [, n, , u] of text.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * unit[u]
  return ms
}

/**
 * A server that answers Consul's health endpoint, GET /v1/health/service/<name>,
 * as Consul's HTTP API documentation describes it: `passing`, `tag` (every one
 * must match), `dc`, ACL tokens (X-Consul-Token, Authorization: Bearer or
 * ?token=), blocking queries (`index` and `wait`, default 5m, at most 10m, plus
 * up to wait/16 of jitter) and the X-Consul-Index header, which is the index of
 * the service's last change. No Consul can be installed where these tests run;
 * this stands in for its API, not for its cluster behaviour.
 */
export class ConsulServer {
  /** Every health query received, in order. */
  readonly queries: SeenQuery[] = []
  /** When set, health queries are answered with this status (500: "the server is failing"). */
  failWith: number | null = null
  private readonly services = new Map<string, { index: number, instances: ConsulInstance[] }>()
  private readonly waiters = new Set<Waiter>()
  private readonly sockets = new Set<Socket>()
  private raftIndex = 10
  private server: Server | null = null
  private port = 0
  private readonly token: string | undefined
  private readonly datacenter: string
  private readonly tls: { cert: Buffer, key: Buffer } | undefined

  /** With `tls`, the server listens over https with that certificate and key. */
  constructor (options: { token?: string, datacenter?: string, tls?: { cert: Buffer, key: Buffer } } = {}) {
    this.token = options.token
    this.datacenter = options.datacenter ?? 'dc1'
    this.tls = options.tls
  }

  get url (): string {
    return `${this.tls === undefined ? 'http' : 'https'}://127.0.0.1:${this.port}`
  }

  async start (): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => { this.handle(req, res) }
    const server = this.tls === undefined ? createServer(handler) : createTlsServer(this.tls, handler)
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    this.port = (server.address() as AddressInfo).port
    this.server = server
    return this
  }

  /** Replaces the instances of a service: its index moves on and blocked queries for it return. */
  setService (name: string, instances: ConsulInstance[]): void {
    this.raftIndex += 1 + Math.floor(Math.random() * 3)
    this.services.set(name, { index: this.raftIndex, instances })
    for (const waiter of this.waiters) if (waiter.service === name) waiter.wake()
  }

  /**
   * Sets the index back, as a restored snapshot or a rebuilt cluster does, with
   * the service's instances replaced. Blocked queries return.
   */
  rewindIndex (to: number, name: string, instances: ConsulInstance[]): void {
    this.raftIndex = to
    this.services.set(name, { index: to, instances })
    for (const waiter of this.waiters) waiter.wake()
  }

  /** Blocking queries now held open. */
  get blocked (): number {
    return this.waiters.size
  }

  async close (): Promise<void> {
    for (const waiter of this.waiters) waiter.wake()
    for (const socket of this.sockets) socket.destroy()
    const server = this.server
    this.server = null
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://consul')
    const match = /^\/v1\/health\/service\/([^/]+)$/.exec(url.pathname)
    if (req.method !== 'GET' || match === null) return this.send(res, 404, 'text/plain', 'Not found')
    const service = decodeURIComponent(match[1])
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    const tokenHeader = req.headers['x-consul-token']
    const token = (typeof tokenHeader === 'string' ? tokenHeader : undefined) ?? bearer ?? url.searchParams.get('token') ?? undefined
    const index = Number(url.searchParams.get('index') ?? '0')
    const blocked = index > 0
    this.queries.push({ service, query: url.searchParams, token, blocked })
    if (this.token !== undefined && token !== this.token) {
      return this.send(res, 403, 'text/plain', token === undefined ? 'Permission denied' : 'ACL not found')
    }
    const dc = url.searchParams.get('dc')
    if (dc !== null && dc !== this.datacenter) return this.send(res, 500, 'text/plain', 'No path to datacenter')
    const waitText = url.searchParams.get('wait')
    let wait = 5 * 60_000
    if (waitText !== null) {
      const parsed = parseWait(waitText)
      if (parsed === null) return this.send(res, 400, 'text/plain', 'Invalid wait time')
      wait = parsed
    }
    wait = Math.min(wait, 10 * 60_000)
    if (!blocked || this.indexOf(service) > index) return this.answer(res, service, url.searchParams)
    let timer: NodeJS.Timeout | null = null
    const waiter: Waiter = {
      service,
      wake: () => {
        if (!this.waiters.delete(waiter)) return
        if (timer !== null) clearTimeout(timer)
        if (!res.destroyed) this.answer(res, service, url.searchParams)
      }
    }
    this.waiters.add(waiter)
    res.once('close', () => {
      if (timer !== null) clearTimeout(timer)
      this.waiters.delete(waiter)
    })
    timer = setTimeout(() => waiter.wake(), wait + Math.random() * wait / 16)
  }

  private indexOf (service: string): number {
    return this.services.get(service)?.index ?? this.raftIndex
  }

  private answer (res: ServerResponse, service: string, query: URLSearchParams): void {
    if (this.failWith !== null) return this.send(res, this.failWith, 'text/plain', 'rpc error: simulated failure')
    const passing = query.has('passing') && query.get('passing') !== 'false'
    const tags = query.getAll('tag')
    const instances = (this.services.get(service)?.instances ?? []).filter((i) =>
      (!passing || (i.status ?? 'passing') === 'passing') && tags.every((tag) => i.tags?.includes(tag) === true))
    const body = instances.map((i) => this.entry(service, i))
    res.setHeader('x-consul-index', String(this.indexOf(service)))
    res.setHeader('x-consul-knownleader', 'true')
    res.setHeader('x-consul-lastcontact', '0')
    this.send(res, 200, 'application/json', JSON.stringify(body))
  }

  private entry (service: string, i: ConsulInstance): unknown {
    const node = `node-${i.nodeAddress ?? '127.0.0.1'}`
    const id = i.id ?? `${service}-${i.port}`
    return {
      Node: { ID: '', Node: node, Address: i.nodeAddress ?? '127.0.0.1', Datacenter: this.datacenter, TaggedAddresses: null, Meta: {} },
      Service: {
        ID: id,
        Service: service,
        Tags: i.tags ?? [],
        Address: i.address,
        Meta: i.meta ?? {},
        Port: i.port,
        Weights: { Passing: i.weight ?? 1, Warning: 1 },
        EnableTagOverride: false
      },
      Checks: [
        { Node: node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', ServiceID: '', ServiceName: '' },
        { Node: node, CheckID: `service:${id}`, Name: `Service '${service}' check`, Status: i.status ?? 'passing', ServiceID: id, ServiceName: service }
      ]
    }
  }

  private send (res: ServerResponse, status: number, type: string, body: string): void {
    res.writeHead(status, { 'content-type': type })
    res.end(body)
  }
}
