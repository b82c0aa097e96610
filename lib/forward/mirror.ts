import { Agent, type Dispatcher } from 'undici'
import type { FastifyRequest } from 'fastify'
import { UnitDraw } from '../balancers/unit-draw'
import type { Pool } from '../pool/pool'
import type { Target } from '../pool/target'
import { classifyFailure } from './failure'
import type { MirrorResult, ResolvedMirror } from './mirror-options'
import { readPickInput } from './pick-input'
import { copiedRequestHeaders } from './request-headers'
import type { UpstreamClient } from './upstream-client'

/** Seed of the mirror's draw: apart from the tiers' and splits' own. */
const MIRROR_SEED = 0x3177a5

/** The HTTP client of mirrored copies, one per gateway: their own connections, never those of client requests. */
export class MirrorClient {
  private agent: Agent | null = null

  constructor (private readonly client: UpstreamClient) {}

  get (): Agent {
    if (this.agent === null) {
      const tls = this.client.tls
      this.agent = new Agent({
        connect: { timeout: this.client.connectTimeout, rejectUnauthorized: tls.rejectUnauthorized, ca: tls.ca, servername: tls.servername }
      })
    }
    return this.agent
  }

  async close (): Promise<void> {
    // Copies still on their way are cut: nobody waits for them.
    await this.agent?.destroy()
  }
}

/**
 * A pool's `mirror`: a copy of `percent` of its requests goes to another pool,
 * fire and forget, once the request's own first try is on its way. The copy
 * has the request's method, path, query, headers (with a mark) and body; its
 * answer is read and dropped, and nothing about it reaches the client's answer
 * or its timing. The mirror pool counts the copies as its own requests (in
 * flight, results, health), so its targets are watched like every other pool's.
 */
export class Mirror {
  private readonly unit = new UnitDraw(MIRROR_SEED)
  private readonly share: number

  /** `counts`: the mirrored pool's tally (`pool.mirrored`), which the metrics read. */
  constructor (
    readonly options: ResolvedMirror,
    readonly to: Pool,
    private readonly counts: Record<MirrorResult, number>,
    private readonly client: MirrorClient,
    private readonly forwarded: boolean
  ) {
    this.share = options.percent / 100
  }

  /** Maybe copies the request: `url` is the path and query as they go upstream, `body` the bytes as they came. */
  offer (request: FastifyRequest, url: string, body: Buffer | undefined): void {
    if (this.share === 0 || this.unit.draw(undefined) >= this.share) return
    const length = body?.length ?? Number(request.headers['content-length'] ?? 0)
    // A body the gateway did not read as it came (its own parsers had it) cannot be copied byte for byte.
    if (length > this.options.maxBody || (body === undefined && (length > 0 || request.headers['transfer-encoding'] !== undefined))) {
      this.counts.skipped++
      return
    }
    const pool = this.to
    const target = pool.pick(readPickInput(pool, request, { key: undefined, ip: '' }))
    if (target === undefined) {
      this.counts.skipped++
      return
    }
    const origin = new URL(target.origin)
    const headers = copiedRequestHeaders(request, request.headers, origin.host, this.forwarded)
    headers[this.options.header] = '1'
    if (body !== undefined) headers['content-length'] = String(body.length)
    const timeout = this.options.timeout
    pool.acquire(target)
    const opts: Dispatcher.RequestOptions = {
      origin: target.origin,
      path: target.basePath + url,
      method: request.method as Dispatcher.HttpMethod,
      headers: headers as Record<string, string>,
      body,
      headersTimeout: timeout,
      bodyTimeout: timeout
    }
    this.send(target, opts).catch(() => {})
  }

  private async send (target: Target, opts: Dispatcher.RequestOptions): Promise<void> {
    const pool = this.to
    const started = performance.now()
    try {
      const res = await this.client.get().request(opts)
      await res.body.dump({ limit: Infinity })
      pool.record(target, res.statusCode, null, performance.now() - started)
      this.counts.answered++
    } catch (err) {
      const failure = classifyFailure(err)
      pool.record(target, 0, failure, performance.now() - started)
      this.counts[failure === 'timeout' ? 'timeout' : 'failed']++
    } finally {
      pool.release(target)
    }
  }
}
