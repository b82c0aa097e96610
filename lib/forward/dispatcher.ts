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

  constructor (options: DispatcherOptions) {
    const connector = buildConnector({
      timeout: options.connectTimeout,
      rejectUnauthorized: options.tls.rejectUnauthorized,
      ca: options.tls.ca,
      servername: options.tls.servername
    })
    this.agent = new Agent({
      connections: options.connections,
      connect (opts, callback) {
        connector(opts, (err, socket) => {
          if (err !== null) {
            callback(err, null)
            return
          }
          callback(null, socket)
          // undici has set its parser up on the socket by now; no answer can have been read yet.
          skipUnsolicitedContinue(socket)
        })
      }
    })
  }

  request (opts: Dispatcher.RequestOptions, callback: RequestCallback): void {
    const attempt = sending
    if (attempt === null) this.agent.request(opts, callback)
    else attempt.dispatch(this.agent, opts, callback as unknown as AnswerCallback)
  }

  close (): Promise<void> {
    return this.agent.close()
  }
}
