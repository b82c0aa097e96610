import { Readable } from 'node:stream'

/** What a streamed body needs of the try it belongs to. */
export interface BodySource {
  /** Asks the upstream connection for more bytes after the body was full. */
  resume: () => void
  /** The body ended, failed or was dropped by its reader: the try is over. */
  bodyClosed: (err: Error | null) => void
  /** How long the body may stay full, its reader taking nothing, in ms. */
  readonly sendTimeout: number
  /** Sends the answer's head to the client now, before any of its body (an event stream's). */
  flushHead: () => void
}

/** The client took none of a streamed answer for sendTimeout ms. */
export class SendTimeoutError extends Error {
  readonly code = 'FST_LB_SEND_TIMEOUT'
}

function checkStall (body: UpstreamBody): void {
  body.checkStall()
}

/**
 * The body of an upstream answer too large (or of unknown length) to be held
 * whole: the bytes are passed on as they come, with back-pressure on the
 * upstream connection. Destroying it (the client left, or the answer was
 * dropped for a retry) ends the try, so no listener is needed per request.
 *
 * While it is full, the upstream connection waits on the client. A client that
 * stops reading would hold that connection for good (undici's body timeout
 * stops while the connection is paused), so after sendTimeout ms of a full
 * buffer the body is destroyed, which closes the client's connection and frees
 * the upstream's, as nginx's send_timeout does.
 */
export class UpstreamBody extends Readable {
  /** performance.now() when the buffer last filled up; 0 while the reader keeps up. */
  private stalledAt = 0
  private stallTimer: NodeJS.Timeout | null = null

  /**
   * `eager`: the head goes to the client as soon as the body has a reader,
   * rather than with its first bytes (Fastify's way, which lets a body that
   * fails before any byte still become the gateway's 502). An event stream may
   * stay quiet for minutes before its first event, and its client must see the
   * head to know the stream is open, as nginx and Envoy send it.
   */
  constructor (private readonly source: BodySource, private eager = false) {
    super({ highWaterMark: 64 * 1024 })
  }

  override _read (): void {
    this.stalledAt = 0
    // Fastify pipes the body into the response after setting the answer's headers on it: the head is complete.
    if (this.eager) {
      this.eager = false
      this.source.flushHead()
    }
    this.source.resume()
  }

  /** The buffer is full: the reader has sendTimeout from now to take something. */
  stalled (): void {
    this.stalledAt = performance.now()
    // One timer per stall that outlasts it; a short stall only moves stalledAt.
    if (this.stallTimer === null) this.armStall(this.source.sendTimeout)
  }

  private armStall (ms: number): void {
    this.stallTimer = setTimeout(checkStall, Math.max(1, Math.ceil(ms)), this)
  }

  checkStall (): void {
    this.stallTimer = null
    if (this.stalledAt === 0 || this.destroyed) return
    const left = this.source.sendTimeout - (performance.now() - this.stalledAt)
    if (left > 0) this.armStall(left)
    else this.destroy(new SendTimeoutError('the client took none of the answer within sendTimeout'))
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer)
    this.stallTimer = null
    this.source.bodyClosed(err)
    callback(err)
  }
}
