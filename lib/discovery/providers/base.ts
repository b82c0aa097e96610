import { messageOf, type DiscoverySink, type Provider } from '../provider'
import { Backoff, Timer } from '../timer'

/**
 * What the network providers share: one refresh at a time, re-armed by a
 * timer that never keeps the process alive, and retries that back off after
 * failures. After stop() nothing reaches the sink any more.
 */
export abstract class RefreshingProvider implements Provider {
  abstract readonly type: string
  protected readonly pool: string
  protected readonly timer = new Timer(() => { this.refresh() })
  protected readonly backoff: Backoff
  private sink: DiscoverySink | null = null
  private stopped = false

  constructor (pool: string, retryMs: number, maxRetryMs: number) {
    this.pool = pool
    this.backoff = new Backoff(retryMs, maxRetryMs)
  }

  start (sink: DiscoverySink): void {
    this.sink = sink
    this.refresh()
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.timer.clear()
    await this.close()
  }

  /** Asks the source once (or follows it until it fails); reports through the methods below. */
  protected abstract refresh (): void

  /** Releases resources (connections, resolvers). */
  protected abstract close (): Promise<void>

  /** The sink while the provider runs, null once stopped. */
  protected get live (): DiscoverySink | null {
    return this.stopped ? null : this.sink
  }

  /** Reports a failure and tries again after the next back-off delay. */
  protected retry (what: string, err: unknown): void {
    const sink = this.live
    if (sink === null) return
    this.timer.set(this.backoff.next())
    sink.fail(new Error(`${what}: ${messageOf(err)}`))
  }

  protected warn (message: string): void {
    this.live?.warn(message)
  }
}
