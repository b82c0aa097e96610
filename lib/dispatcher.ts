import { Agent, type Dispatcher } from 'undici'
import type { FastifyReply } from 'fastify'
import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import type { FailureKind } from './pool'

/**
 * What the dispatcher needs of the try being sent: an abort signal in the shape
 * undici accepts (on/once/removeListener + aborted), and callbacks for the
 * moment the upstream answered or failed.
 */
export interface TrySignal {
  readonly aborted: boolean
  on (event: 'abort', listener: () => void): void
  once (event: 'abort', listener: () => void): void
  removeListener (event: 'abort', listener: () => void): void
  failed (kind: FailureKind): void
}

/**
 * The try that is being handed to reply-from right now. reply-from calls the
 * dispatcher synchronously from reply.from(), so a module-level slot carries the
 * try across without a header or a closure per request.
 */
let sending: TrySignal | null = null

/** Proxies with reply.from(source, options), `signal` being the try it sends. */
export function sendWith (signal: TrySignal, reply: FastifyReply, source: string, options: FastifyReplyFromHooks): void {
  sending = signal
  try {
    reply.from(source, options)
  } finally {
    sending = null
  }
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'ERR_SSL_WRONG_VERSION_NUMBER'
])

/** Why a try failed, from the HTTP client's error. */
export function classifyFailure (err: unknown): FailureKind {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return 'connect'
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout'
    if (code === 'UND_ERR_ABORTED') return 'aborted'
  }
  return 'reset'
}

export interface DispatcherOptions {
  connectTimeout: number
  connections: number
  tls: { rejectUnauthorized: boolean, ca?: string | Buffer | Array<string | Buffer>, servername?: string }
}

type RequestOptions = Dispatcher.RequestOptions & { signal?: unknown }
type RequestCallback = (err: Error | null, data: Dispatcher.ResponseData) => void

/**
 * The HTTP client reply-from uses when the plugin registers it: one undici Agent
 * (a connection pool per upstream origin) that verifies TLS certificates by
 * default, lets a client's disconnect abort the upstream request, and tells the
 * forwarder why a try failed.
 */
export class LbDispatcher {
  readonly agent: Agent

  constructor (options: DispatcherOptions) {
    this.agent = new Agent({
      connections: options.connections,
      connect: {
        timeout: options.connectTimeout,
        rejectUnauthorized: options.tls.rejectUnauthorized,
        ca: options.tls.ca,
        servername: options.tls.servername
      }
    })
  }

  request (opts: RequestOptions, callback: RequestCallback): void {
    const signal = sending
    if (signal === null) {
      this.agent.request(opts, callback)
      return
    }
    opts.signal = signal
    this.agent.request(opts, (err, data) => {
      if (err !== null) signal.failed(classifyFailure(err))
      callback(err, data)
    })
  }

  close (): Promise<void> {
    return this.agent.close()
  }
}
