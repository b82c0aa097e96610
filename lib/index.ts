import fp from 'fastify-plugin'
import replyFrom, { type FastifyReplyFromOptions } from '@fastify/reply-from'
import type { FastifyPluginAsync } from 'fastify'
import { LbDispatcher } from './forward/dispatcher'
import { forward } from './forward/handler'
import { kState } from './forward/request-state'
import { LoadBalancer } from './route/load-balancer'
import { addObservability } from './observability/routes'
import { closeIdleWhileClosing } from './forward/close-idle'
import { Discovery } from './discovery/index'
import { resolveOptions, type LbOptions, type PoolOptions } from './options/resolve'
import type { LbTarget } from './pool/target'
import { logCircuit } from './breaker/log'
import type { SplitOptions } from './route/split-options'
import { joinCluster } from './cluster/index'
import { clusterPrimary } from './cluster/primary'
import { addAdminRoutes } from './admin/routes'

declare module 'fastify' {
  interface FastifyRequest {
    /** The target chosen for this request by its route's pool; null on routes without an upstream. */
    target: LbTarget | null
  }
  interface FastifyContextConfig {
    /** The route's upstream pool: the name of a pool from the plugin options, inline pool options, or a split between named pools. */
    upstream?: string | PoolOptions | SplitOptions
  }
  interface FastifyInstance {
    lb: LoadBalancer
  }
}

const plugin: FastifyPluginAsync<LbOptions> = async function fastifyLb (fastify, options) {
  const resolved = resolveOptions(options)
  // With its own HTTP client the plugin sends request bodies as they came (LoadBalancer.readsRawBodies).
  const ownClient = !fastify.hasPlugin('@fastify/reply-from')
  const lb = new LoadBalancer(resolved, ownClient)

  fastify.decorate('lb', lb)
  fastify.decorateRequest('target', null)
  fastify.decorateRequest(kState, null)

  // Health follows every pool, inline ones included; checks start when the gateway is ready and all stop on close.
  lb.health.log = fastify.log
  lb.eachPool((pool) => lb.health.attach(pool))
  fastify.addHook('onReady', async () => { lb.health.start() })
  fastify.addHook('onClose', async () => { lb.health.close() })

  // Circuit breakers log opening and closing; an open one's timer stops on close.
  lb.eachPool((pool) => { if (pool.breaker !== null) logCircuit(pool, fastify.log) })
  fastify.addHook('onClose', async () => { for (const pool of lb.allPools()) pool.breaker?.stop() })

  // Discovery providers feed their pools from when the gateway is ready (it waits for their first answer) until it closes.
  const discovery = new Discovery(fastify.log)
  lb.eachPool((pool) => discovery.attach(pool))
  fastify.addHook('onReady', async () => { await discovery.start() })
  fastify.addHook('onClose', async () => { await discovery.stop() })

  // Requests in flight when app.close() is called finish, and then their keep-alive connections close too.
  closeIdleWhileClosing(fastify)
  // Once they have, a pool's timer of request deadlines (retry.deadline) has nothing left to watch.
  fastify.addHook('onClose', async () => {
    for (const pool of lb.allPools()) pool.requestDeadlines?.close()
  })

  // WebSocket upgrades reach the routes of `forward`; app.close() ends the tunnels still open, which the server would wait for.
  lb.upgrades.install(fastify)
  fastify.addHook('preClose', (done) => {
    for (const pool of lb.allPools()) pool.tunnels.closeAll()
    done()
  })

  // Mirrored copies still on their way when the gateway closes are cut.
  fastify.addHook('onClose', async () => { await lb.mirrorClient.close() })

  // Cluster mode: health checks once per machine, ejections shared, one scrape for every worker (docs/cluster.md).
  const machine = resolved.cluster === null ? null : joinCluster(fastify, lb, resolved.cluster, resolved.status?.hideUrls ?? false)

  // Metrics on every pool (inline ones too) and the /metrics and /lb/status routes, as configured.
  addObservability(fastify, lb, resolved, machine)

  // The admin API, only when asked for and (unless allowUnguarded) behind the gateway's guard (docs/admin.md).
  if (resolved.admin !== null) await addAdminRoutes(fastify, lb, resolved.admin, resolved.status?.hideUrls ?? false)

  if (!ownClient) {
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
export { fastifyLb, forward, LoadBalancer, clusterPrimary }
export type { ClusterPrimary, ClusterPrimaryOptions } from './cluster/primary'
export type { ClusterOptions, ClusterMetricsMode } from './cluster/options'
export type { LbOptions, PoolOptions, RetryOptions, BackoffOptions, TargetInput, HashKeySource } from './options/resolve'
export type { LbTarget, Target } from './pool/target'
export type { AffinityOptions, CookieSigner } from './affinity/options'
export type { AffinityCounts, AffinityResult } from './affinity/affinity'
export type { Pool, PoolEvents, PoolStats, MembershipChange, FailureKind, ResultListener, RetryCounts } from './pool/pool'
export type { HealthCheckOptions, OutlierDetectionOptions, SlowStartOptions } from './health/options'
export type { CircuitBreakerOptions } from './breaker/options'
export type { CircuitEvent, CircuitState } from './breaker/breaker'
export type { HealthRegistry } from './health/registry'
export type { CheckEvent, TransitionEvent } from './health/monitor'
export type { AlgorithmName } from './balancers/index'
export type { DiscoveryEvent, DiscoveryOptions, FileDiscoveryOptions, DnsDiscoveryOptions, ConsulDiscoveryOptions, EtcdDiscoveryOptions, EtcdTlsOptions, RegistryTlsOptions } from './discovery/index'
export type { SplitOptions, SplitArm, SplitMatch } from './route/split-options'
export type { MirrorOptions } from './forward/mirror-options'
export type { PoolPolicy, PolicyChange, PolicyKey } from './pool/policy'
export type { SplitView } from './route/split'
export type { LoadBalancerEvents } from './route/load-balancer'
export type { AdminOptions } from './admin/options'
export type { AdminChange, AdminTargetState, WeightChange, StateChange, SplitChange, ConfigureChange } from './admin/changes'
export type { MetricsOptions, StatusOptions, StatusHistoryOptions, RouteGuard } from './observability/options'
export type { StatusReport, PoolStatus, CircuitStatus, TargetStatus, HistoryReport, TargetHistory } from './observability/status-report'
export { InvalidOptionError, UnknownPoolError } from './errors'

// CommonJS: `require('fastify-lb')` is the plugin itself, carrying every export (`.default`, `.fastifyLb`, `.forward`,
// ...), as the @fastify/* plugins are, so `app.register(require('fastify-lb'))` works. Last in the file: tsc has set
// every export on `exports` by now. index.mts gives ESM importers the same object.
module.exports = Object.assign(fastifyLb, exports)
