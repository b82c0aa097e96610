import Fastify from 'fastify'
import lb from '../../lib/index'
import type { LbOptions } from '../../lib/options/resolve'

/**
 * The error that registering the plugin with these options (and, when given,
 * a route `/r` whose `config.upstream` is `route`) fails with at startup.
 */
export async function startupError (options: unknown, route?: unknown): Promise<Error & { code?: string }> {
  const app = Fastify()
  try {
    await app.register(lb, options as LbOptions)
    if (route !== undefined) app.get('/r', { config: { upstream: route as string } }, async () => 'x')
    await app.ready()
  } catch (err) {
    return err as Error & { code?: string }
  } finally {
    await app.close().catch(() => {})
  }
  throw new Error('startup did not fail')
}
