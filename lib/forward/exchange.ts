import { Stream } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { AffinityExchange } from '../affinity/affinity'
import { sendWith } from './dispatcher'
import { classifyFailure } from './failure'
import { answers, noAnswerMessage, timedOutMessage } from '../errors'
import type { FailureKind, Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import type { Deadlines, Timed } from './deadlines'
import { Try, type TryOwner } from './try'
import { UpstreamBody } from './upstream-body'
import { decideRetry } from './retry-decision'
import { fallBack, type FallbackSubject } from './fallback'
import type { Upstream } from './upstream'

/** What an exchange is given of its request: the route's pool and what the plugin's hooks read before the handler. */
export interface ExchangeSource extends Omit<AffinityExchange, 'key' | 'ip'>, FallbackSubject {
  readonly request: FastifyRequest
  readonly answer: FastifyReply
  readonly rawBody: Buffer | undefined
  /** Whether the request holds the slot on target that it took at the pick (the first try takes it over). */
  takeReservation: (target: Target) => boolean
}

/**
 * The upstream answer as reply-from hands it over: `stream` is the try itself
 * when the answer was read whole, an UpstreamBody when it is streamed, and any
 * stream when the gateway registered reply-from with a client of its own.
 */
export interface UpstreamResponse {
  statusCode: number
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>
  stream: Try | (Stream & { destroy: () => void })
}

/** A retry's back-off is over. A function of the module, so that waiting allocates no closure. */
function resumeAfterBackoff (exchange: Exchange): void {
  exchange.resume()
}

/**
 * One client request on its way through a pool, across its tries: it sends
 * each try, decides what a failed one leads to (another target, or the
 * gateway's own answer) and hands the answer that stays to the client.
 */
export class Exchange implements TryOwner, Timed {
  readonly tried: Target[] = []
  retries = 0
  current: Try | null = null
  /** The client's connection closed before its answer was finished: nobody reads what comes next. */
  private clientLeft = false
  /** performance.now() by which the request must have its answer's head (retry.deadline); set only when the pool has one. */
  deadline = 0
  prevTimed: Timed | null = null
  nextTimed: Timed | null = null
  timedIn: Deadlines | null = null
  /** A retry waiting out its back-off, and the target it was decided for. */
  private backoff: NodeJS.Timeout | null = null
  private waitingFor: Target | null = null
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** The body as it came, which every try sends; undefined without one (or when the gateway's own parsers read it). */
  readonly body: Buffer | undefined
  /** The pool the tries go to: the route's, or the one its fallback names once every try there failed. */
  pool: Pool
  private upstream: Upstream

  /**
   * `source` is the path that reply-from resolves below the target's base path;
   * `query` (without '?') goes upstream as it came, so that reply-from's checks
   * of paths never judge (or fail to decode) a query string.
   */
  constructor (
    upstream: Upstream,
    private readonly from: ExchangeSource,
    readonly source: string,
    readonly query: string
  ) {
    this.upstream = upstream
    this.pool = upstream.pool
    this.request = from.request
    this.reply = from.answer
    this.body = from.rawBody
    // The deadline runs from the first try on, across every try and back-off after it.
    this.pool.requestDeadlines?.add(this, performance.now())
  }

  send (target: Target, budgeted: boolean): void {
    const attempt = new Try(this, target, budgeted, this.from.takeReservation(target))
    this.current = attempt
    this.tried.push(target)
    this.request.target = target
    try {
      sendWith(attempt, this.request, this.reply, target.basePath + this.source, this.upstream.fromOptions)
    } catch (err) {
      // reply-from refuses some paths synchronously: nothing was sent.
      attempt.release()
      if ((err as { statusCode?: unknown }).statusCode !== 400) throw err
      answers.badPath(this.reply, this.pool.name)
    }
  }

  /** Whether the request body can be sent again. */
  private replayable (): boolean {
    return !(this.request.body instanceof Stream)
  }

  /** The target of the next try; none for a client that strict affinity pins to the one that failed. */
  private another (): Target | undefined {
    if (this.pool.affinity?.holds(this.from) === true) return undefined
    return this.pool.pickAnother(this.from, this.tried)
  }

  /**
   * Sends the request on to another target after the current try failed
   * (`reason`: how, or the status that asks for a retry); returns whether it
   * went (or waits to go). A `budgeted` retry follows a try that reached an
   * upstream: it needs a retryable method, a body that can be sent again, an
   * attempt left, time before the deadline and the budget's consent, and waits
   * its back-off first. A refused connection sent nothing, so any replayable
   * request goes on at once, free of budget and attempts. `answer`, the failed
   * try's answer, is dropped before the next try is sent or waited for.
   */
  private retryOn (reason: FailureKind | number, budgeted: boolean, answer?: UpstreamResponse): boolean {
    const pool = this.pool
    const retry = pool.options.retry
    const counts = pool.retries
    let next: Target | undefined
    const { verdict, wait } = decideRetry(
      {
        budgeted,
        replayable: this.replayable(),
        method: this.request.method,
        retries: this.retries,
        remaining: pool.requestDeadlines === null ? Infinity : this.deadline - performance.now()
      },
      retry,
      () => (next = this.another()) !== undefined,
      () => pool.retryBudget.withdraw(),
      pool.random
    )
    // attempts 0 (retry: false) wants no retry at all: nothing was refused.
    if (verdict === 'attempts' && retry.attempts > 0) counts.limit_exceeded++
    else if (verdict === 'budget') counts.budget_exhausted++
    else if (verdict === 'deadline') counts.deadline_exceeded++
    if (verdict !== 'retry' || next === undefined) return false
    if (answer !== undefined) {
      // reply-from already copied this answer's headers; the next try brings its own.
      this.discard(answer)
      this.current?.release()
    }
    if (budgeted) this.retries++
    pool.emit('retry', next, reason, wait)
    if (wait > 0) {
      // Ref'd on purpose: the wait is part of a live request, and a timer left behind would show as a leak.
      this.waitingFor = next
      this.backoff = setTimeout(resumeAfterBackoff, wait, this)
      return true
    }
    counts.attempted++
    this.send(next, budgeted)
    return true
  }

  /**
   * Every try failed: the pool's fallback for 'failed' answers, or takes the
   * request to the pool it names, as a first try there (the body is sent again,
   * so only a request whose body can be).
   */
  private fallBack (): boolean {
    if (!this.replayable()) return false
    const outcome = fallBack(this.from, 'failed')
    if (outcome !== 'moved') return outcome === 'answered'
    const upstream = this.from.upstream as Upstream
    const target = upstream.pool.pick(this.from)
    // The fallback pool has no target either: the request keeps the answer of its own pool's failure.
    if (target === undefined) return false
    // The request's deadline was its own pool's: the fallback pool's tries run under that pool's timeout.
    this.pool.requestDeadlines?.remove(this)
    this.upstream = upstream
    this.pool = upstream.pool
    this.tried.length = 0
    this.retries = 0
    upstream.pool.retryBudget.deposit()
    this.send(target, false)
    return true
  }

  /** The back-off is over: the retry goes on, to a target that may still take it. */
  resume (): void {
    const deadlines = this.pool.requestDeadlines
    if (deadlines !== null && performance.now() >= this.deadline) {
      // Its timer came before the deadline's: the deadline ends the request all the same.
      deadlines.remove(this)
      this.expire()
      return
    }
    const decided = this.waitingFor
    this.stopWaiting()
    if (decided === null) return
    // The pool may have changed meanwhile (an ejection, a drain, a full target): a target that left its pickable set is replaced.
    const next = this.pool.eligible.includes(decided) ? decided : this.another()
    if (next === undefined) {
      answers.noAnswer(this.reply, this.pool.name)
      return
    }
    this.pool.retries.attempted++
    this.send(next, true)
  }

  private stopWaiting (): void {
    if (this.backoff !== null) clearTimeout(this.backoff)
    this.backoff = null
    this.waitingFor = null
  }

  /**
   * The request's deadline passed (retry.deadline) before its answer was on
   * its way: a back-off is cut, and so is a try still waiting for its answer's
   * head, as Envoy's route timeout does, and the client gets 504. The cut try
   * counts as aborted, not against its target, which was still within its own
   * timeout. A try that has just failed is left to its verdict, which sees the
   * deadline passed.
   */
  expire (): void {
    if (this.reply.sent) return
    const attempt = this.current
    if (this.backoff !== null) {
      this.stopWaiting()
    } else if (attempt !== null && attempt.pending) {
      // reply-from may still report the cut try: with no current try, the exchange ignores it.
      this.current = null
      attempt.abort()
      this.pool.record(attempt.target, 0, 'aborted', performance.now() - attempt.started)
    } else {
      return
    }
    this.pool.retries.deadline_exceeded++
    answers.timedOut(this.reply, this.pool.name)
  }

  /** Drops an answer that is not passed on: the headers reply-from copied from it, and its body. */
  private discard (answer: UpstreamResponse): void {
    for (const name of Object.keys(answer.headers)) this.reply.removeHeader(name)
    answer.stream.destroy()
  }

  /** The current try failed; `error` is reply-from's report, read only when the try could not tell why itself. */
  onError (error?: unknown): void {
    const attempt = this.current
    if (attempt === null) return
    // The gateway's own reply-from client reports the HTTP client's error as the cause of one of its own.
    const clientError = (error as { cause?: unknown } | undefined)?.cause ?? error
    const failure = attempt.failure ?? classifyFailure(clientError)
    const latency = performance.now() - attempt.started
    attempt.release()
    if (attempt.refused) {
      // The gateway's own HTTP client would not send it: no target saw it, so none is charged, and a retry would fare no better.
      this.request.log.error({ err: clientError }, 'fastify-lb: the HTTP client refused to send a request')
      answers.notSent(this.reply, this.pool.name)
      return
    }
    this.pool.record(attempt.target, 0, failure, latency)
    if (failure === 'aborted' || this.clientLeft) {
      // The client left: nobody reads an answer; send a minimal one so Fastify finishes the request.
      answers.abandoned(this.reply, this.pool.name)
      return
    }
    // A refused connection, or a try that never got one, sent nothing: it goes elsewhere whatever its method, free of budget.
    if (this.retryOn(failure, failure !== 'connect' && failure !== 'queue')) return
    if (this.fallBack()) return
    if (failure === 'timeout' || failure === 'queue') answers.timedOut(this.reply, this.pool.name)
    else answers.noAnswer(this.reply, this.pool.name)
  }

  /**
   * The answer's body failed before a byte of it reached the client (the
   * connection was cut right after the headers, or the body timed out). Fastify
   * hands this error to the route's error handler next, so it is made to read as
   * the gateway's own 502 or 504, without the upstream's headers or words. Once
   * the answer has begun, Fastify cuts the client's connection instead: the only
   * honest signal left.
   */
  bodyFailed (err: Error & { statusCode?: number, code?: string }, headers: object): void {
    const raw = this.reply.raw
    if (raw.headersSent) return
    for (const name of Object.keys(headers)) {
      raw.removeHeader(name)
      this.reply.removeHeader(name)
    }
    const timeout = err.code === 'UND_ERR_BODY_TIMEOUT'
    err.statusCode = timeout ? 504 : 502
    err.code = timeout ? 'FST_LB_GATEWAY_TIMEOUT' : 'FST_LB_BAD_GATEWAY'
    err.message = timeout ? timedOutMessage(this.pool.name) : noAnswerMessage(this.pool.name)
  }

  onResponse (res: UpstreamResponse): void {
    const attempt = this.current
    if (attempt === null) return
    const status = res.statusCode
    if (!(status >= 100 && status <= 599)) {
      // A status no HTTP client may be sent (reply-from reported it to onError first, which let it through):
      // an invalid answer, failed like a broken connection, without the headers reply-from already copied.
      this.discard(res)
      attempt.failed('reset')
      this.onError()
      return
    }
    this.pool.record(attempt.target, status, null, performance.now() - attempt.started)
    if (this.reply.sent) {
      // Answered already (a handler timeout of the gateway's): this answer has nowhere to go.
      res.stream.destroy()
      attempt.release()
      return
    }
    if (this.pool.options.retry.statuses.has(status)) {
      if (this.retryOn(status, true, res)) return
    } else if (this.tried.length > 1) {
      // A retried request got an answer that retrying is not for: the retries paid off.
      this.pool.retries.succeeded++
    }
    // The answer is on its way to the client: the deadline covered the wait for it, not the passing on.
    this.pool.requestDeadlines?.remove(this)
    const affinity = this.pool.affinity
    if (affinity !== null) {
      // The cookie's name is the gateway's: an upstream's cookie of that name must not replace it. After failover
      // the cookie follows the client to the target that answered, and setting it keeps it the only one of its name.
      if (attempt.target !== this.tried[0]) affinity.follow(this.from, this.tried[0], attempt.target)
      else if (res.headers['set-cookie'] !== undefined) affinity.keepOwn(this.from)
    }
    const body = res.stream
    if (body instanceof Try) {
      // Read whole (and the target's slot released): headers, bytes and the end go out in one write.
      this.reply.send(body.payload)
      return
    }
    if (!(body instanceof UpstreamBody)) {
      // A stream of the gateway's own reply-from client: only its events tell when the try is over.
      body.on('close', () => { attempt.release() })
      body.on('error', (err: Error) => { this.bodyFailed(err, res.headers) })
    }
    this.reply.send(body)
  }

  /**
   * The client's response closed. Before it was finished, the client has left:
   * its upstream request is cut. (Fastify's onRequestAbort hook would miss a
   * client that sent all of its body, a POST's, before leaving.)
   */
  readonly clientClosed = (): void => {
    this.pool.requestDeadlines?.remove(this)
    if (this.reply.raw.writableFinished) return
    this.clientLeft = true
    if (this.backoff !== null) {
      // Nothing is in flight during a back-off: the wait ends here, and the answer only lets Fastify finish the request.
      this.stopWaiting()
      answers.abandoned(this.reply, this.pool.name)
      return
    }
    this.current?.abort()
  }

  answerFailed (err: unknown): void {
    this.request.log.error({ err }, 'fastify-lb: passing an upstream answer on failed')
    if (!this.reply.sent) answers.noAnswer(this.reply, this.pool.name)
  }

  flushHead (): void {
    const raw = this.reply.raw
    if (!raw.headersSent && !raw.destroyed) raw.flushHeaders()
  }
}
