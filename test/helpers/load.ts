import { type Client, until } from './gateway'

export interface LoadOptions {
  /** Requests in flight at once (default 4). */
  concurrency?: number
  /** The load stops after this many requests (default 60000). */
  maxRequests?: number
  /** ...or after this long, in ms (default 60000). */
  maxMs?: number
}

/** A request that did not come back 200, or did not come back. */
export interface Failure {
  phase: string
  status: number
  body: string
}

/**
 * Continuous GET load on one URL from a few concurrent loops, bounded in count
 * and time. Each answer is counted under the phase that was current when its
 * request was sent, by the upstream that served it (x-served-by).
 */
export class Load {
  /** Label for the requests sent from now on. */
  phase = 'start'
  readonly failures: Failure[] = []
  total = 0
  private readonly counts = new Map<string, Map<string, number>>()
  private stopped = false
  /** Whether every loop has ended (stopped, or out of requests or time). */
  private ended = false
  private readonly workers: Array<Promise<void>>

  constructor (client: Client, url: string, options: LoadOptions = {}) {
    const deadline = Date.now() + (options.maxMs ?? 60_000)
    const max = options.maxRequests ?? 60_000
    const loop = async (): Promise<void> => {
      while (!this.stopped && this.total < max && Date.now() < deadline) {
        const phase = this.phase
        this.total++
        try {
          const res = await client.send(url)
          if (res.status === 200 && res.servedBy !== undefined) this.count(phase, res.servedBy)
          else this.failures.push({ phase, status: res.status, body: res.text.slice(0, 300) })
        } catch (err) {
          this.failures.push({ phase, status: 0, body: err instanceof Error ? err.message : String(err) })
        }
      }
    }
    this.workers = Array.from({ length: options.concurrency ?? 4 }, async () => loop())
    Promise.all(this.workers).then(() => { this.ended = true }, () => {})
  }

  /** Answers by upstream id among the requests sent in a phase. */
  in (phase: string): Record<string, number> {
    return Object.fromEntries(this.counts.get(phase) ?? [])
  }

  /** Answered requests sent in a phase. */
  size (phase: string): number {
    let n = 0
    for (const c of this.counts.get(phase)?.values() ?? []) n += c
    return n
  }

  /** Starts a phase and waits until n of its requests were answered. */
  async run (phase: string, n: number): Promise<Record<string, number>> {
    this.phase = phase
    await until(() => this.size(phase) >= n || this.ended, 30_000, `${n} answers in phase ${phase}`)
    return this.in(phase)
  }

  async stop (): Promise<void> {
    this.stopped = true
    await Promise.all(this.workers)
  }

  private count (phase: string, by: string): void {
    let c = this.counts.get(phase)
    if (c === undefined) {
      c = new Map()
      this.counts.set(phase, c)
    }
    c.set(by, (c.get(by) ?? 0) + 1)
  }
}
