/**
 * The upstreams of `npm run bench:overload`: N loopback HTTP servers in this
 * one process, each of a fixed capacity, as a server with C worker threads is:
 * it serves at most `capacity` requests at once, each for `serviceMs`, and the
 * requests beyond that wait in a FIFO inside the server, however many come, so
 * their latency grows without bound. A request whose client left while it
 * waited is dropped when its turn comes; one in service is served to the end.
 *   node --require ./bench/transpile.js bench/overload-upstream.ts <count> <capacity> <serviceMs>
 * Prints `{"ports":[...]}` once they listen; exits on SIGTERM or SIGINT.
 * GET STATS_PATH answers at once, outside the capacity: the server's counts
 * (OverloadUpstreamStats), whose peaks it then resets.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { runMain, serveOnLoopback } from './loopback-servers'
import { upstreamBody } from './upstreams'

export const STATS_PATH = '/__bench/stats'

export interface OverloadUpstreamStats {
  /** Requests at the server now: in service or waiting. */
  open: number
  /** The most requests at the server at once (in service or waiting) since the last read. */
  peakOpen: number
  /** The most requests in service at once since the last read: at most the capacity. */
  peakInService: number
  served: number
  /** Requests whose client left while they waited. */
  dropped: number
}

class FixedCapacity {
  private inService = 0
  private readonly waiting: Array<() => void> = []
  private readonly stats: OverloadUpstreamStats = { open: 0, peakOpen: 0, peakInService: 0, served: 0, dropped: 0 }

  constructor (private readonly capacity: number, private readonly serviceMs: number, private readonly body: Buffer) {}

  handle (request: IncomingMessage, response: ServerResponse): void {
    if (request.url === STATS_PATH) {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.stats))
      this.stats.peakOpen = this.stats.open
      this.stats.peakInService = this.inService
      return
    }
    this.stats.open++
    this.stats.peakOpen = Math.max(this.stats.peakOpen, this.stats.open)
    // 'close' comes when the answer is sent, or earlier when the client leaves.
    let closed = false
    response.once('close', () => {
      closed = true
      this.stats.open--
    })
    const serve = (): void => {
      if (closed) {
        this.stats.dropped++
        return
      }
      this.inService++
      this.stats.peakInService = Math.max(this.stats.peakInService, this.inService)
      setTimeout(() => {
        this.inService--
        this.stats.served++
        if (!closed) response.writeHead(200, { 'content-type': 'text/plain', 'content-length': this.body.length }).end(this.body)
        this.next()
      }, this.serviceMs)
    }
    this.waiting.push(serve)
    this.next()
  }

  /** Starts waiting requests, oldest first, while there is capacity. */
  private next (): void {
    while (this.inService < this.capacity) {
      const serve = this.waiting.shift()
      if (serve === undefined) return
      serve()
    }
  }
}

// Run as a program; bench/overload.ts imports it for STATS_PATH and the type only.
if (require.main === module) {
  runMain(async () => {
    const [count, capacity, serviceMs] = process.argv.slice(2, 5).map(Number)
    if (![count, capacity, serviceMs].every((n) => Number.isInteger(n) && n > 0)) throw new Error('usage: overload-upstream.ts <count> <capacity> <serviceMs>')
    await serveOnLoopback(Array.from({ length: count }, (_, i) => {
      const server = new FixedCapacity(capacity, serviceMs, Buffer.from(upstreamBody(i)))
      return (request, response) => server.handle(request, response)
    }))
  })
}
