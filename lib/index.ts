import fp from 'fastify-plugin'
import replyFrom, { type FastifyReplyFromOptions } from '@fastify/reply-from'
import type { FastifyPluginAsync } from 'fastify'
import { LbDispatcher } from './dispatcher'
import { forward, kExchange, kPool } from './forward'
import { LoadBalancer } from './load-balancer'
import { resolveOptions, type LbOptions, type PoolOptions } from './options'
import type { LbTarget } from './target'

declare module 'fastify' {
  interface FastifyRequest {
    /** The target chosen for this request by its route's pool; null on routes without an upstream. */
    target: LbTarget | null
  }
  interface FastifyContextConfig {
    /** The route's upstream pool: the name of a pool from the plugin options, or inline pool options. */
    upstream?: string | PoolOptions
  }
  interface FastifyInstance {
    lb: LoadBalancer
  }
}

const plugin: FastifyPluginAsync<LbOptions> = async function fastifyLb (fastify, options) {
  const resolved = resolveOptions(options)
  const lb = new LoadBalancer(resolved)

  fastify.decorate('lb', lb)
  fastify.decorateRequest('target', null)
  fastify.decorateRequest(kPool, null)
  fastify.decorateRequest(kExchange, null)

  if (fastify.hasPlugin('@fastify/reply-from')) {
    fastify.log.debug('fastify-lb: using the reply-from the gateway registered; its TLS and client settings apply')
  } else {
    const dispatcher = new LbDispatcher(resolved)
    // reply-from accepts any object with a request() method as its client; its types only list undici's own.
    const undici = dispatcher as unknown as FastifyReplyFromOptions['undici']
    await fastify.register(replyFrom, { undici, disableRequestLogging: true })
    fastify.addHook('onClose', async () => {
      await dispatcher.close()
    })
  }

  fastify.addHook('onRoute', (route) => lb.onRoute(route))
}

/** The fastify-lb plugin. Register it before the routes that name upstream pools. */
const fastifyLb = fp(plugin, { fastify: '5.x', name: 'fastify-lb' })

export default fastifyLb
export { fastifyLb, forward, LoadBalancer }
export type { LbOptions, PoolOptions, RetryOptions, TargetInput, HashKeySource } from './options'
export type { LbTarget, Target } from './target'
export type { Pool, MembershipChange, FailureKind, ResultListener } from './pool'
export type { AlgorithmName } from './balancers/index'
export { InvalidOptionError, UnknownPoolError } from './errors'

// Lets CommonJS users write require('fastify-lb') and still reach the named exports.
module.exports = fastifyLb
module.exports.default = fastifyLb
module.exports.fastifyLb = fastifyLb
module.exports.forward = forward
module.exports.LoadBalancer = LoadBalancer
