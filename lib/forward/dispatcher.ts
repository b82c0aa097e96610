import { Agent, buildConnector, type Dispatcher } from 'undici'
import { skipUnsolicitedContinue } from './interim-continue'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyReplyFromHooks } from '@fastify/reply-from'
import type { AnswerCallback, Try } from './try'
import type { ResolvedTls } from '../options/tls'

/**
 * The try that is being handed to reply-from right now. reply-from calls the
 * dispatcher synchronously from reply.from(), so a module-level slot carries the
 * try across without a header or a closure per request.
 */
let sending: Try | null = null

/** Proxies with reply.from(source, options), `attempt` being the try it sends. */
export function sendWith (attempt: Try, request: FastifyRequest, reply: FastifyReply, source: string, options: FastifyReplyFromHooks): void {
  sending = attempt
  // A body the try sends as it came is kept from reply-from, which would encode it again (JSON) or drop it (GET).
  const body = attempt.owner.body === undefined ? undefined : request.body
  if (body !== undefined) request.body = undefined
  try {
    reply.from(source, options)
  } finally {
    sending = null
    if (body !== undefined) request.body = body
  }
}

export interface DispatcherOptions {
  connectTimeout: number
  connections: number
  tls: ResolvedTls
}

type RequestCallback = (err: Error | null, data: Dispatcher.ResponseData) => void

/**
 * The HTTP client reply-from uses when the plugin registers it: one undici Agent
 * (a connection pool per upstream origin) that verifies TLS certificates by
 * default. A try sent by the plugin is dispatched with the try itself as the
 * handler, instead of undici's request(): no abort signal, body stream or
 * callback wrapper per request, small answers read whole, and the try learns
 * why it failed. Anything else (reply.from() called by a handler of the
 * gateway's own) goes through undici's request() as usual.
 */
export class LbDispatcher {
  readonly agent: Agent
  /** For pools with `http2`: made on the first try that needs it. */
  private h2: Agent | null = null

  constructor (private readonly options: DispatcherOptions) {
    this.agent = makeAgent(options, false)
  }

  request (opts: Dispatcher.RequestOptions, callback: RequestCallback): void {
    const attempt = sending
    if (attempt === null) this.agent.request(opts, callback)
    else attempt.dispatch(attempt.owner.pool.options.http2 ? this.http2() : this.agent, opts, callback as unknown as AnswerCallback)
  }

  private http2 (): Agent {
    if (this.h2 === null) this.h2 = makeAgent(this.options, true)
    return this.h2
  }

  async close (): Promise<void> {
    await Promise.all([this.agent.close(), this.h2?.close()])
  }
}

/**
 * An undici Agent that verifies TLS certificates unless told not to. With
 * `http2`, https targets are offered h2 by ALPN (falling back to HTTP/1.1 if
 * they decline) and http targets are spoken h2c with prior knowledge (RFC 9113
 * section 3.3): there is no HTTP/1.1 Upgrade to h2c in undici, which RFC 9113
 * deprecates anyway.
 */
function makeAgent (options: DispatcherOptions, http2: boolean): Agent {
  const connector = buildConnector({
    timeout: options.connectTimeout,
    rejectUnauthorized: options.tls.rejectUnauthorized,
    ca: options.tls.ca,
    servername: options.tls.servername,
    ...(http2 ? { allowH2: true, useH2c: true } : {})
  } as buildConnector.BuildOptions)
  return new Agent({
    connections: options.connections,
    ...(http2 ? { allowH2: true } : {}),
    connect (opts, callback) {
      connector(opts, (err, socket) => {
        if (err !== null) {
          callback(err, null)
          return
        }
        callback(null, socket)
        // undici has set its HTTP/1 parser up on the socket by now; no answer can have been read yet.
        if ((socket as { alpnProtocol?: string | false }).alpnProtocol !== 'h2') skipUnsolicitedContinue(socket)
      })
    }
  })
}
