import { EventEmitter } from 'node:events'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions } from 'fastify'
import type { Registry, RegistryContentType } from 'prom-client'
import { describeValue, invalidOption, UnknownPoolError } from '../errors'
import { forward } from '../forward/handler'
import { buildFromOptions } from '../forward/from-options'
import { stateOf } from '../forward/request-state'
import { Upstream } from '../forward/upstream'
import { pickFor } from './pick'
import { resolvePoolOptions, type ResolvedLbOptions } from '../options/resolve'
import { Pool } from '../pool/pool'
import { HealthRegistry } from '../health/registry'
import { readRawBody, restoreHeaders } from '../forward/request-body'
import type { UpstreamClient } from '../forward/upstream-client'
import { Mirror, MirrorClient } from '../forward/mirror'
import { UpgradeRoutes } from '../tunnel/upgrades'
import { Split, unknownSplitPool, type SplitView } from './split'
import { isSplit, resolveSplit } from './split-options'
import type { AdminChange, ChangeLog } from '../admin/changes'

type PreHandler = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

function prepend<T> (hook: T, existing: T | T[] | undefined): T[] {
  if (existing === undefined) return [hook]
  return Array.isArray(existing) ? [hook, ...existing] : [hook, existing]
}

function append<T> (hook: T, existing: T | T[] | undefined): T[] {
  if (existing === undefined) return [hook]
  return Array.isArray(existing) ? [...existing, hook] : [existing, hook]
}

/** The events `app.lb` emits, with their arguments. */
export interface LoadBalancerEvents {
  /** The admin API changed a target, a split or a pool's policy (docs/admin.md). */
  admin: [AdminChange]
}

/** What the plugin decorates the instance with as `app.lb`. */
export class LoadBalancer extends EventEmitter<LoadBalancerEvents> {
  /** The ready route handler that proxies to request.target with failover. */
  readonly forward = forward
  /** Active checks shared by every pool, outlier detection and slow start; emits 'check' and 'transition'. */
  readonly health: HealthRegistry
  /** The registry holding the plugin's Prometheus metrics; null when the metrics option is false. */
  metrics: Registry<RegistryContentType> | null = null
  private readonly pools = new Map<string, Pool>()
  private readonly inline = new WeakMap<object, Pool>()
  private readonly preHandlers = new WeakMap<Pool, PreHandler>()
  private readonly splits = new Map<string, Split>()
  private readonly splitOf = new WeakMap<object, Split>()
  private readonly splitListeners: Array<(split: Split) => void> = []
  private readonly upstreams = new Map<Pool, Upstream>()
  private readonly poolListeners: Array<(pool: Pool) => void> = []
  private readonly client: UpstreamClient
  /** @internal The connections of mirrored copies, closed with the gateway. */
  readonly mirrorClient: MirrorClient
  /** @internal The routes whose WebSocket upgrades the plugin tunnels. */
  readonly upgrades = new UpgradeRoutes()
  /**
   * Whether routes served by `forward` read request bodies as they came: only with the plugin's own HTTP client,
   * which sends those bytes. A reply-from the gateway registered itself sends what Fastify's parsers made of them.
   */
  readonly readsRawBodies: boolean
  /** @internal The admin API's recent changes, which the status page lists; null without the admin API. */
  changeLog: ChangeLog | null = null

  constructor (options: ResolvedLbOptions, readsRawBodies: boolean) {
    super()
    this.readsRawBodies = readsRawBodies
    this.health = new HealthRegistry(options.tls)
    this.client = { connectTimeout: options.connectTimeout, tls: options.tls }
    this.mirrorClient = new MirrorClient(this.client)
    for (const spec of options.pools.values()) this.addPool(new Pool(spec))
    for (const upstream of this.upstreams.values()) this.wireFallback(upstream)
  }

  /** A pool by name (named in options, or an inline pool by its route URL); throws when there is none. */
  pool (name: string): Pool {
    const pool = this.findPool(name)
    if (pool === undefined) throw invalidOption(name, '(pool)', name, 'no pool of that name')
    return pool
  }

  /** @internal A pool by name, or undefined. */
  findPool (name: string): Pool | undefined {
    return this.pools.get(name)
  }

  /** @internal A split by its route URL, or undefined. */
  findSplit (route: string): Split | undefined {
    return this.splits.get(route)
  }

  /** A route's traffic split by its route URL (`'/api/*'`), to read or change its weights; throws when there is none. */
  split (route: string): SplitView {
    const split = this.findSplit(route)
    if (split === undefined) throw invalidOption(route, 'split', route, 'no route of that URL splits its traffic')
    return split
  }

  /** @internal Called with every split, those that exist and those routes add later. */
  eachSplit (listener: (split: Split) => void): void {
    for (const split of this.splits.values()) listener(split)
    this.splitListeners.push(listener)
  }

  /** @internal Every split now. */
  eachSplitNow (fn: (split: Split) => void): void {
    for (const split of this.splits.values()) fn(split)
  }

  /** Every pool, named and inline. */
  allPools (): IterableIterator<Pool> {
    return this.pools.values()
  }

  /** Called with every pool, those that exist and those created later (inline pools appear as routes are added). */
  eachPool (listener: (pool: Pool) => void): void {
    for (const pool of this.pools.values()) listener(pool)
    this.poolListeners.push(listener)
  }

  private addPool (pool: Pool): Upstream {
    const upstream = new Upstream(pool, buildFromOptions(pool.options.timeout), this.client)
    pool.on('configure', () => { upstream.fromOptions.timeout = pool.options.timeout })
    this.upstreams.set(pool, upstream)
    this.pools.set(pool.name, pool)
    for (const listener of this.poolListeners) listener(pool)
    return upstream
  }

  /** A fallback that names a pool takes requests there, a mirror copies them there: another pool of the plugin's options. */
  private wireFallback (upstream: Upstream): void {
    const pool = upstream.pool
    const mirror = pool.options.mirror
    if (mirror !== null) {
      const to = this.pools.get(mirror.pool)
      if (to === undefined || to === pool) {
        throw invalidOption(pool.name, 'mirror.pool', mirror.pool, to === undefined ? 'names no pool of the plugin options' : 'names the pool itself')
      }
      upstream.mirror = new Mirror(mirror, to, pool.mirrored as NonNullable<Pool['mirrored']>, this.mirrorClient, pool.options.forwardedHeaders)
    }
    const name = pool.options.fallback?.pool ?? null
    if (name === null) return
    const to = this.pools.get(name)
    if (to === undefined || to === pool) {
      throw invalidOption(pool.name, 'fallback', name, to === undefined ? 'names no pool of the plugin options' : 'names the pool itself')
    }
    upstream.fallbackTo = this.upstreams.get(to) as Upstream
  }

  /** onRoute: resolves the route's pool once and adds the hooks that pick a target. */
  onRoute (route: RouteOptions): void {
    const upstream: unknown = route.config?.upstream
    if (upstream === undefined || upstream === null) return
    const pick = isSplit(upstream) ? this.splitHook(this.resolveSplit(route, upstream as object)) : this.preHandlerOf(this.resolveRoutePool(route, upstream))
    // First among the route's preHandler hooks: those of its options and those other plugins' onRoute hooks append see request.target.
    route.preHandler = prepend(pick, route.preHandler as PreHandler | PreHandler[] | undefined)
    // Every route of a pool, whatever its handler now: a plugin's onRoute hook that ran first (@fastify/websocket's) may have wrapped `forward`.
    this.upgrades.add(route)
    if (this.readsRawBodies && route.handler === forward) {
      // A handler of the gateway's own reshapes requests and gets Fastify's parsed body; forward passes the bytes on.
      route.preParsing = append(readRawBody, route.preParsing as typeof readRawBody | Array<typeof readRawBody> | undefined)
      route.preValidation = prepend(restoreHeaders, route.preValidation as typeof restoreHeaders | Array<typeof restoreHeaders> | undefined)
    }
  }

  private resolveRoutePool (route: RouteOptions, upstream: unknown): Pool {
    if (typeof upstream === 'string') {
      const pool = this.pools.get(upstream)
      if (pool === undefined) throw new UnknownPoolError(`${String(route.method)} ${route.url}`, upstream)
      return pool
    }
    if (typeof upstream !== 'object' || upstream === null) {
      throw invalidOption(route.url, 'config.upstream', upstream, 'must be a pool name or pool options')
    }
    // Fastify adds a HEAD route beside every GET with the same config object: both share one pool.
    const known = this.inline.get(upstream)
    if (known !== undefined) return known
    let name = route.url
    if (this.pools.has(name)) name = `${String(route.method)} ${route.url}`
    if (this.pools.has(name)) throw invalidOption(name, 'config.upstream', describeValue(route.url), 'a pool of this name exists already')
    const pool = new Pool(resolvePoolOptions(name, upstream))
    this.inline.set(upstream, pool)
    this.wireFallback(this.addPool(pool))
    return pool
  }

  private resolveSplit (route: RouteOptions, upstream: object): Split {
    // Fastify adds a HEAD route beside every GET with the same config object: both share one split.
    const known = this.splitOf.get(upstream)
    if (known !== undefined) return known
    let name = route.url
    if (this.splits.has(name)) name = `${String(route.method)} ${route.url}`
    const split = new Split(name, resolveSplit(name, upstream), (pool, field) => {
      const found = this.pools.get(pool)
      if (found === undefined) throw unknownSplitPool(name, field, pool)
      return this.upstreams.get(found) as Upstream
    })
    this.splits.set(name, split)
    this.splitOf.set(upstream, split)
    for (const listener of this.splitListeners) listener(split)
    return split
  }

  private splitHook (split: Split): PreHandler {
    return function pickSplit (request, reply, done) {
      const state = stateOf(request, reply)
      state.upstream = split.choose(request, state)
      pickFor(state, done)
    }
  }

  private preHandlerOf (pool: Pool): PreHandler {
    let hook = this.preHandlers.get(pool)
    if (hook === undefined) {
      const upstream = this.upstreams.get(pool) as Upstream
      hook = function pickTarget (request, reply, done) {
        const state = stateOf(request, reply)
        state.upstream = upstream
        pickFor(state, done)
      }
      this.preHandlers.set(pool, hook)
    }
    return hook
  }
}
