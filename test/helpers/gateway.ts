import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import lb from '../../lib/index'
import type { LbOptions } from '../../lib/options/resolve'

export interface Gateway {
  app: FastifyInstance
  url: string
  close: () => Promise<void>
}

/**
 * Starts a real gateway on 127.0.0.1:0 with the plugin registered and the routes
 * that `routes` adds (by default `/*` forwarding to the pool named `main`).
 */
export async function startGateway (
  options: LbOptions,
  routes?: (app: FastifyInstance) => void,
  serverOptions: FastifyServerOptions = {}
): Promise<Gateway> {
  const app = Fastify({ logger: false, ...serverOptions })
  await app.register(lb, options)
  if (routes !== undefined) routes(app)
  else app.all('/*', { config: { upstream: 'main' } }, app.lb.forward)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return { app, url: `http://127.0.0.1:${port}`, close: async () => { await app.close() } }
}

/** A loopback URL on which nothing listens: connections to it are refused. */
export async function refusedUrl (): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  servedBy: string | undefined
}

/** A client with its own connection pool, so tests do not share sockets. */
export class Client {
  readonly agent: Agent

  constructor (connections = 64) {
    this.agent = new Agent({ connections })
  }

  async send (url: string, init: { method?: string, headers?: Record<string, string>, body?: string, signal?: AbortSignal } = {}): Promise<Answer> {
    const res = await request(url, {
      dispatcher: this.agent,
      method: (init.method ?? 'GET') as 'GET',
      headers: init.headers,
      body: init.body,
      signal: init.signal
    })
    const text = await res.body.text()
    const servedBy = res.headers['x-served-by']
    return { status: res.statusCode, headers: res.headers, text, servedBy: typeof servedBy === 'string' ? servedBy : undefined }
  }

  async close (): Promise<void> {
    await this.agent.close()
  }
}

/** Sends n sequential GETs and returns who served each (or the status when none did). */
export async function sequence (client: Pick<Client, 'send'>, url: string, n: number, headers?: Record<string, string>): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await client.send(url, { headers })
    out.push(res.servedBy ?? String(res.status))
  }
  return out
}

export function count (values: string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1
  return counts
}

/** Waits until check() holds, polling; fails after timeoutMs so a test never hangs. */
export async function until (check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
