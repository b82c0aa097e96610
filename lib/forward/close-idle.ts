import type { FastifyInstance } from 'fastify'

/** How soon a connection that has finished its last answer is closed while the gateway closes, in ms. */
const CLOSE_IDLE_EVERY_MS = 50

/**
 * app.close() stops accepting connections, closes the idle ones and waits for
 * the rest. A keep-alive connection busy with a request at that moment (for a
 * gateway, a proxied request that may take long) stays open after its answer
 * until the client leaves or the keep-alive timeout ends it (72 s in Fastify),
 * and app.close() and the process wait all that time. While the gateway closes,
 * connections are therefore closed as soon as they fall idle.
 */
export function closeIdleWhileClosing (fastify: FastifyInstance): void {
  fastify.addHook('preClose', (done) => {
    const server = fastify.server
    // An HTTP/2 server has no idle HTTP/1 connections to close; one that never listened closes at once.
    if (!server.listening || typeof server.closeIdleConnections !== 'function') {
      done()
      return
    }
    const timer = setInterval(() => server.closeIdleConnections(), CLOSE_IDLE_EVERY_MS)
    timer.unref()
    server.once('close', () => clearInterval(timer))
    done()
  })
}
