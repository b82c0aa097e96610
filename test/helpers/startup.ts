import Fastify from 'fastify'
import lb from '../../lib/index'
import type { LbOptions } from '../../lib/options'

/** The error that registering the plugin with these options (and readying the app) fails with. */
export async function startupError (options: unknown): Promise<Error & { code?: string }> {
  const app = Fastify()
  try {
    await app.register(lb, options as LbOptions)
    await app.ready()
  } catch (err) {
    return err as Error & { code?: string }
  } finally {
    await app.close().catch(() => {})
  }
  throw new Error('startup did not fail')
}
