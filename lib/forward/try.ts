import { AsyncResource } from 'node:async_hooks'
import type { IncomingHttpHeaders } from 'node:http'
import { errors, type Dispatcher } from 'undici'
import type { Deadlines, Timed } from './deadlines'
import { classifyFailure, refusedByClient } from './failure'
import { answerHeaders } from './hop-by-hop'
import type { FailureKind, Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import { SendTimeoutError, UpstreamBody, type BodySource } from './upstream-body'

/** What a try needs of the request it serves. */
export interface TryOwner {
  readonly pool: Pool
  /** The request body as it came, sent by every try; undefined when it has none or the gateway's parsers read it. */
  readonly body: Buffer | undefined
  /** The streamed body of this try's answer failed after its head was handed over. */
  bodyFailed (err: Error & { statusCode?: number, code?: string }, headers: object): void
  /** Passing the answer on threw: nothing else would answer the client. */
  answerFailed (err: unknown): void
  /** Sends the head of the answer being streamed to the client now. */
  flushHead (): void
}

/** Server-sent events: an answer that may stay open, and quiet, for as long as the client listens. */
function isEventStream (type: string | string[] | undefined): boolean {
  return typeof type === 'string' && type.startsWith('text/event-stream')
}

/** reply-from's callback: it reads statusCode, headers and body of the answer. */
export type AnswerCallback = (err: Error | null, answer?: Try) => void

function pushChunk (this: UpstreamBody, chunk: Buffer | null): boolean {
  const more = this.push(chunk)
  // A full buffer: the client is reading slower than the upstream sends, or not at all.
  if (!more && chunk !== null) this.stalled()
  return more
}

/** The try waited its whole timeout for one of the gateway's connections to its target, and was never sent. */
class QueueTimeoutError extends Error {
  readonly code = 'FST_LB_QUEUE_TIMEOUT'
}

/**
 * Where a try's upstream exchange stands; it only moves forward. The target's
 * in-flight slot (`open`) lives apart from it on purpose: a buffered answer frees
 * the slot when its last byte is in, a streamed one when the client has taken it
 * (or left), and a client that leaves frees it before the upstream says it stopped.
 */
const enum Phase {
  /** Handed to undici; no connection yet. */
  Waiting,
  /** On a connection; the final answer's head has not come. */
  Sent,
  /** The answer is being read whole before it is passed on. */
  Reading,
  /** The answer is passed on as it comes. */
  Streaming,
  /** The upstream exchange is over: answered in full, failed, or cut by the gateway. */
  Done
}

/**
 * One try of a request on one target. It is the undici dispatch handler of the
 * try (undici's current handler API: onRequestStart, onResponseStart,
 * onResponseData, onResponseEnd, onResponseError), the answer handed to
 * reply-from (statusCode, headers, body), and, when the answer is buffered, that
 * answer's body too; so a try costs one object (two for a streamed answer). It
 * releases the target's in-flight slot exactly once, whichever of answer,
 * failure, timeout or client disconnect comes first. It is an AsyncResource so
 * that reply-from's callback, and the Fastify hooks after it, run in the
 * request's async context (AsyncLocalStorage), as undici's own request() would
 * have them.
 */
export class Try extends AsyncResource implements Dispatcher.DispatchHandler, BodySource, Timed {
  /** How the try failed, or 'aborted' once the client left; null while neither happened. */
  failure: FailureKind | null = null
  /** The gateway's own HTTP client refused to send the request: nothing reached the target. */
  refused = false
  readonly started = performance.now()
  statusCode = 0
  headers: IncomingHttpHeaders = {}
  /** What reply-from passes on: the streamed body, or this try when the answer was read whole. */
  body: UpstreamBody | Try | null = null
  /** The bytes of an answer read whole; undefined when it has none. */
  payload: Buffer | undefined = undefined
  private phase = Phase.Waiting
  /** The target's in-flight slot is held. */
  private open = true
  private head = false
  private callback: AnswerCallback | null = null
  /** undici's handle on the upstream exchange, from the moment it has a connection. */
  private controller: Dispatcher.DispatchController | null = null
  /** The chunks of an answer being read whole (most answers come in one). */
  private first: Buffer | undefined = undefined
  private rest: Buffer[] | null = null
  deadline = 0
  prevTimed: Timed | null = null
  nextTimed: Timed | null = null
  timedIn: Deadlines | null = null

  /** `reserved`: the request took its slot of target when it was picked (pools with limits); the try takes it over. */
  constructor (readonly owner: TryOwner, readonly target: Target, readonly budgeted: boolean, reserved = false) {
    super('fastify-lb.try')
    const pool = owner.pool
    if (!reserved) pool.acquire(target)
    if (budgeted) pool.activeRetries++
    // The timeout runs from here: time spent waiting for a connection counts, as a client waiting sees it.
    pool.deadlines.add(this, this.started)
  }

  /** The try has handed neither an answer nor a failure to reply-from yet: the request still waits on it. */
  get pending (): boolean {
    return this.phase < Phase.Streaming
  }

  get sendTimeout (): number {
    return this.owner.pool.options.sendTimeout
  }

  /** Sends the try through an undici dispatcher; callback gets the answer once its head (or, buffered, all of it) is in. */
  dispatch (dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, callback: AnswerCallback): void {
    this.callback = callback
    this.head = opts.method === 'HEAD'
    const body = this.owner.body
    if (body !== undefined) {
      // The bytes as they came (reply-from was shown no body, so it re-encoded nothing), with their own length.
      opts.body = body
      ;(opts.headers as Record<string, string | undefined>)['content-length'] = String(body.length)
    }
    dispatcher.dispatch(opts, this)
  }

  /** The deadline passed before the final answer's head came. */
  expire (): void {
    if (this.phase === Phase.Done) return
    if (this.controller === null) {
      // Still waiting for a connection: nothing was sent, so the exchange may go on elsewhere.
      this.failure = 'queue'
      this.onResponseError(null, new QueueTimeoutError(`no connection to the target within ${this.owner.pool.options.timeout} ms`))
    } else {
      this.controller.abort(new errors.HeadersTimeoutError())
    }
  }

  failed (kind: FailureKind): void {
    this.failure = kind
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    // Given up while it waited for a connection: it must not be sent now.
    if (this.failure === 'aborted' || this.phase === Phase.Done) {
      controller.abort(new errors.RequestAbortedError())
      return
    }
    this.controller = controller
    this.phase = Phase.Sent
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, parsed: IncomingHttpHeaders): void {
    // 1xx answers are informational: the final one follows, within the same deadline.
    if (statusCode < 200) return
    this.owner.pool.deadlines.remove(this)
    const headers = answerHeaders(parsed)
    this.statusCode = statusCode
    this.headers = headers
    if (this.head || statusCode === 204 || statusCode === 304) {
      // No body follows, whatever the head says (a 304 may carry the length of the body it stands for, which
      // undici then misses): the answer is complete, and what undici makes of the rest is not the client's concern.
      this.phase = Phase.Done
      this.release()
      this.body = this
      this.answer()
    } else if (this.bufferable(headers)) {
      this.phase = Phase.Reading
    } else {
      this.phase = Phase.Streaming
      this.body = new UpstreamBody(this, isEventStream(headers['content-type']))
      this.answer()
    }
  }

  /**
   * Whether the answer is read whole before it is passed on: a declared length up to the pool's bufferLimit
   * (64 KiB by default, as much as nginx buffers) and a content type. The client then gets one write, and an
   * answer cut short is a failed try the gateway can still answer for, or retry.
   */
  private bufferable (headers: IncomingHttpHeaders): boolean {
    const length = headers['content-length']
    if (length === undefined || length === '') return false
    const bytes = Number(length)
    // A body without a content type goes as a stream: Fastify would label a Buffer application/octet-stream.
    return bytes <= this.owner.pool.options.bufferLimit && (bytes === 0 || headers['content-type'] !== undefined)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.phase === Phase.Streaming) {
      // Streamed bytes are written to the client from here: in the request's context, like everything after them.
      if (!this.runInAsyncScope(pushChunk, this.body as UpstreamBody, chunk)) controller.pause()
      return
    }
    if (this.phase !== Phase.Reading) return
    if (this.first === undefined) this.first = chunk
    else if (this.rest === null) this.rest = [this.first, chunk]
    else this.rest.push(chunk)
  }

  onResponseEnd (): void {
    const phase = this.phase
    if (phase === Phase.Done) return
    this.phase = Phase.Done
    if (phase === Phase.Streaming) {
      this.runInAsyncScope(pushChunk, this.body as UpstreamBody, null)
      return
    }
    this.payload = this.rest === null ? this.first : Buffer.concat(this.rest)
    this.first = undefined
    this.rest = null
    // The upstream connection is free again: so is the target's slot.
    this.release()
    this.body = this
    this.answer()
  }

  onResponseError (_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.phase === Phase.Done) return
    const streaming = this.phase === Phase.Streaming
    if (this.failure === null) {
      // undici checks a request before it sends a byte of it; what it refuses is the gateway's doing, not the target's.
      if (this.phase === Phase.Waiting && refusedByClient(err)) this.refused = true
      this.failure = classifyFailure(err)
    }
    this.phase = Phase.Done
    // Released here whatever follows: reply-from reports nothing once the reply was sent (a handler timeout).
    this.release()
    if (!streaming) {
      // Nothing was passed on yet (a buffered answer cut short fails the same way): reply-from reports it.
      const callback = this.callback
      this.callback = null
      this.first = undefined
      this.rest = null
      if (callback !== null) queueMicrotask(() => { this.runInAsyncScope(callback, null, err) })
      return
    }
    this.runInAsyncScope(this.failBody, this, err)
  }

  /** The streamed body broke off: the gateway's error handling runs in the request's context too. */
  private failBody (err: Error): void {
    this.owner.bodyFailed(err, this.headers)
    ;(this.body as UpstreamBody).destroy(err)
  }

  private answer (): void {
    const callback = this.callback
    this.callback = null
    if (callback === null) return
    try {
      this.runInAsyncScope(callback, null, null, this)
    } catch (err) {
      // undici would take this for a failure of the upstream and drop it: the request's owner answers instead.
      this.owner.answerFailed(err)
    }
  }

  /** The client has room again for a streamed answer: the upstream connection may read on. */
  resume (): void {
    this.controller?.resume()
  }

  flushHead (): void {
    this.owner.flushHead()
  }

  /** The streamed body ended or was dropped: cut the upstream exchange if it was still running. */
  bodyClosed (err: Error | null): void {
    if (err instanceof SendTimeoutError) this.target.aborted++
    if (this.phase !== Phase.Done) {
      this.phase = Phase.Done
      this.controller?.abort(new errors.RequestAbortedError())
    }
    this.release()
  }

  /** reply-from drops an answer whose client has left; a buffered one holds nothing but its bytes. */
  destroy (): void {
    this.payload = undefined
    this.release()
  }

  /** The client left: cut the upstream exchange, which fails the try as 'aborted'. */
  abort (): void {
    if (this.failure === 'aborted') return
    // A try that already failed keeps its reason: the client leaving now changes nothing upstream.
    if (this.phase !== Phase.Done) {
      this.failure = 'aborted'
      this.controller?.abort(new errors.RequestAbortedError())
    }
    // Without our dispatcher (the gateway registered reply-from itself) nothing else would release the slot.
    this.release()
  }

  release (): void {
    if (!this.open) return
    this.open = false
    const pool = this.owner.pool
    pool.deadlines.remove(this)
    if (this.budgeted) pool.activeRetries--
    pool.release(this.target)
  }
}
