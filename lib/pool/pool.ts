import { EventEmitter } from 'node:events'
import { Affinity, type AffinityResult } from '../affinity/affinity'
import { CircuitBreaker, type CircuitEvent } from '../breaker/breaker'
import type { DiscoveryEvent } from '../discovery/provider'
import { algorithms, traits } from '../balancers/index'
import type { PickContext, PickInput } from '../balancers/balancer'
import { Deadlines } from '../forward/deadlines'
import { invalidOption } from '../errors'
import { resolveTarget, resolveTargets, type ResolvedPoolOptions, type ResolvedTarget, type TargetInput } from '../options/resolve'
import { RetryBudget } from '../forward/retry-budget'
import { checkWeight } from '../options/validate'
import { isLive, isServing } from './serving'
import { Target, type LastCheck } from './target'
import { Tiers, type TierBalancers } from './tiers'
import { WaitQueue, type Waiter } from './queue'
import { UNAVAILABLE_REASONS, type UnavailableReason } from '../forward/fallback-options'
import { Tunnels } from './tunnels'
import type { MirrorResult } from '../forward/mirror-options'
import { BALANCING_KEYS, resolvePolicy, type PolicyChange, type PoolPolicy } from './policy'

/**
 * How a try ended without an answer, for passive health and metrics. The
 * target is charged with 'connect', 'timeout' and 'reset' only: 'aborted'
 * (the client left) and 'queue' (the try waited its whole timeout for one of
 * the gateway's connections and was never sent) say nothing about it.
 */
export type FailureKind = 'connect' | 'timeout' | 'reset' | 'aborted' | 'queue'

/**
 * Called once per try: status is the upstream's status (0 when it never
 * answered), failure says why when it did not.
 */
export type ResultListener = (target: Target, status: number, failure: FailureKind | null, latencyMs: number) => void

/** What became of retries, by the `result` of `lb_retries_total` (docs/observability.md says when each counts). */
export interface RetryCounts {
  attempted: number
  succeeded: number
  budget_exhausted: number
  limit_exceeded: number
  deadline_exceeded: number
}

export interface MembershipChange {
  added: readonly Target[]
  removed: readonly Target[]
  updated: readonly Target[]
}

/** The events a pool emits, with their arguments (see docs/observability.md and docs/health.md). */
export interface PoolEvents {
  /** Members joined, left or changed weight, in one rebuild. */
  change: [MembershipChange]
  /** Panic mode began (true) or ended (false). */
  panic: [boolean]
  /**
   * A try failed and the request goes on to `target`; `reason` is the failure or the status that asked for it,
   * `wait` the ms of back-off before the retry is sent (0: at once).
   */
  retry: [target: Target, reason: FailureKind | number, wait: number]
  /** What became of a request's affinity cookie. */
  affinity: [AffinityResult]
  /** Outlier detection ejected `target` until `until` (epoch ms); `peer` when another cluster worker decided it (docs/cluster.md). */
  eject: [target: Target, until: number, peer: boolean]
  uneject: [Target]
  /** A discovery provider refreshed, or failed to. */
  discovery: [DiscoveryEvent]
  /** The circuit breaker changed state (docs/circuit-breaker.md). */
  circuit: [CircuitEvent]
  /** configure() changed the pool's policy (docs/traffic.md). */
  configure: [PolicyChange]
}

/** Why a request was refused for load, by the `reason` of `lb_overloaded_total`. */
export interface OverloadCounts {
  /** Every target (or the pool's maxInFlight) was full and the pool has no queue. */
  full: number
  /** The queue was full. */
  queue_full: number
  /** The request waited the queue's whole timeout. */
  queue_timeout: number
}

/** A snapshot of a pool's counters (the live fields change with every request). */
export interface PoolStats {
  /** Requests in flight over all members. */
  inFlight: number
  /** Retries of sent requests now in flight. */
  activeRetries: number
  /** Requests that found no eligible target. */
  noTarget: number
  retries: RetryCounts
  /** Whether panic mode is on (too few healthy targets: picks go over all of them). */
  panic: boolean
  /** Members, and how many of them new requests may go to. */
  targets: number
  eligible: number
}

export type { PickInput }

const NO_TARGETS: readonly Target[] = []

/**
 * Discovery's entry to reconcile(): the steps that make a pool match a list
 * already checked, to be applied one per turn of the event loop. Not part of
 * the public API.
 */
export const kReconcileSteps = Symbol('fastify-lb.reconcileSteps')
/** Entries (targets added, re-weighed, taken back or drained) one step of a large change applies at most. */
const STEP_SIZE = 1000
/** Algorithms whose rebuild costs a whole ring or table however few targets changed: stepping would repeat it. */
const WHOLE_TABLE = new Set(['consistent-hash', 'ip-hash', 'maglev'])

/** A change being gathered by batch(); `updatedSet` keeps `updated` free of repeats in O(1). */
interface PendingChange {
  added: Target[]
  removed: Target[]
  updated: Target[]
  updatedSet: Set<Target>
}

function newTarget (spec: ResolvedTarget): Target {
  return new Target(spec.id, spec.url, spec.origin, spec.basePath, spec.weight, spec.maxConnections, spec.priority)
}

function byId (a: Target, b: Target): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/**
 * One upstream pool: its members, the eligible subset the balancer sees, and the
 * counters every try updates. Membership and eligibility changes rebuild the
 * balancer once; picking reads only what the rebuild prepared.
 */
export class Pool extends EventEmitter<PoolEvents> {
  readonly name: string
  /** @internal Sum of in-flight requests over all members. */
  inFlight = 0
  /** @internal Retries of sent requests now in flight. */
  activeRetries = 0
  /** @internal How many retries of sent requests the pool may still make. */
  readonly retryBudget: RetryBudget
  /** @internal Requests that found no eligible target. */
  noTarget = 0
  /** @internal Retries by result, counted where they are decided and read when metrics are scraped. */
  readonly retries: RetryCounts = { attempted: 0, succeeded: 0, budget_exhausted: 0, limit_exceeded: 0, deadline_exceeded: 0 }
  /** @internal Too few targets are usable (panicThreshold): picks go over every target that is not draining. */
  panic = false
  /** @internal Requests refused for load, by reason. */
  readonly overloaded: OverloadCounts = { full: 0, queue_full: 0, queue_timeout: 0 }
  /** @internal Requests a fallback answered, by reason. */
  readonly fallbacks: Record<UnavailableReason, number> = Object.fromEntries(UNAVAILABLE_REASONS.map((r) => [r, 0])) as Record<UnavailableReason, number>
  /** @internal Requests waiting for a slot; null without the `queue` option. */
  waiting: WaitQueue | null
  /**
   * @internal Whether requests take their slot when their target is picked (before the route's other hooks)
   * rather than when their first try is sent: only with limits, which must count every request that holds a slot.
   */
  limited: boolean
  /** @internal Every try's deadline: the pool's timeout from the moment it is sent, waiting for a connection included. */
  deadlines: Deadlines
  /** @internal Every request's `retry.deadline`, from its first try on, across its tries; null without one. */
  requestDeadlines: Deadlines | null
  /** @internal Draws the jitter of retry back-offs; a test replaces it to fix the sequence. */
  random: () => number = Math.random
  /** @internal Whether picks read a hash key (hashing algorithms): the front-end reads it only then. */
  needsKey = false
  /** @internal Whether picks read the client address (ip-hash, or `hashKey: 'ip'`). */
  needsIp = false
  /** @internal The pool's cookie affinity; null without the `affinity` option. */
  affinity: Affinity | null
  /** @internal What became of the copies of its requests (the `mirror` option); null without one. */
  readonly mirrored: Record<MirrorResult, number> | null
  /** @internal Open WebSocket tunnels by target, ended by a drain's timeout or the gateway closing. */
  readonly tunnels: Tunnels
  /** @internal The pool's circuit breaker; null without the `circuitBreaker` option. */
  readonly breaker: CircuitBreaker | null

  /** Sorted by id and free of departed targets only after settle(): see `targets`. */
  private members: Target[] = []
  /** The true membership; `members` catches up with it in one pass. */
  private readonly memberSet = new Set<Target>()
  /**
   * Members per URL (two while a target drains and a new one took its URL),
   * for add()'s duplicate check: built by the first add() of a batch of them,
   * dropped by reconcile(), which checks its list as a whole.
   */
  private urlIndex: Map<string, number> | null = null
  private membersUnsorted = false
  private membersDeparted = false
  private readonly byIdMap = new Map<string, Target>()
  /** The options now: those it was created with, as configure() changed them since. */
  private policy: ResolvedPoolOptions
  /** The targets by tier, each tier with its balancers; one tier unless targets have priorities. */
  private tiers!: Tiers
  /** Whether the algorithm skips tried targets itself (see Balancer.skipsTried). */
  private skipsTried = false
  /** Tables rebuilt in whole (rings, Maglev) keep full targets and pass over them per pick (see Tiers). */
  private keepsFull = false
  private maxInFlight: number
  /** Targets that pass the serving rule (in panic: that are live), and how many of them have room. */
  private serving = 0
  private servingWithRoom = 0
  private admitScheduled = false
  private readonly ctx: PickContext = { key: undefined, ip: '', tried: NO_TARGETS, poolInFlight: 0 }
  private readonly resultListeners: ResultListener[] = []
  private batchDepth = 0
  private pendingChange: PendingChange | null = null
  /** Who waits for a draining target to leave (drain() and remove() promises). */
  private readonly drains = new Map<Target, Array<() => void>>()

  constructor (options: ResolvedPoolOptions) {
    super()
    this.name = options.name
    this.policy = options
    this.retryBudget = new RetryBudget(options.retry.budgetPercent, options.retry.minRetriesPerSecond)
    this.deadlines = new Deadlines(options.timeout)
    this.requestDeadlines = options.retry.deadline === 0 ? null : new Deadlines(options.retry.deadline)
    this.affinity = options.affinity === null ? null : new Affinity(this, options.affinity)
    this.breaker = options.circuitBreaker === null ? null : new CircuitBreaker(this, options.circuitBreaker)
    this.tunnels = new Tunnels(options.drainTimeout)
    this.mirrored = options.mirror === null ? null : { answered: 0, failed: 0, timeout: 0, skipped: 0 }
    this.buildTiers()
    this.maxInFlight = options.maxInFlight === 0 ? Infinity : options.maxInFlight
    this.waiting = options.queue === null ? null : new WaitQueue(options.queue.size, options.queue.timeout)
    this.limited = options.maxInFlight !== 0
    this.batch(() => {
      for (const spec of options.targets) this.insert(newTarget(spec))
    })
  }

  /** The pool's options: those it was created with, as configure() changed them since. */
  get options (): ResolvedPoolOptions {
    return this.policy
  }

  /**
   * Changes the pool's policy while it serves: the algorithm and hash key,
   * timeouts, retries, affinity, health checks, outlier detection, slow start,
   * limits and the queue (PoolPolicy). `partial` is checked as the plugin's
   * options are: a bad value throws FST_LB_INVALID_OPTION and changes nothing.
   * Otherwise it applies at once, in one step no request sees half of: new
   * requests follow the new policy, requests in flight end under the timeouts
   * they started with, members keep their state (health of targets whose check
   * did not change, counters, ejections). Emits 'configure'.
   */
  configure (partial: PoolPolicy): PolicyChange {
    const { options, changed } = resolvePolicy(this.policy, partial)
    const change: PolicyChange = { pool: this.name, changed, at: Date.now() }
    if (changed.length === 0) return change
    const previous = this.policy
    this.policy = options
    const touched = new Set<string>(changed)
    this.batch(() => {
      if (changed.some((key) => BALANCING_KEYS.has(key))) {
        this.buildTiers()
        this.refresh()
      }
      if (touched.has('maxInFlight') || touched.has('queue')) this.applyLimits()
      if (touched.has('retry')) this.applyRetry(previous)
      if (options.timeout !== previous.timeout) this.deadlines = new Deadlines(options.timeout)
      if (touched.has('affinity')) this.affinity = options.affinity === null ? null : new Affinity(this, options.affinity, this.affinity?.counts)
      this.tunnels.drainTimeout = options.drainTimeout
    })
    this.emit('configure', change)
    return change
  }

  /** The balancers of the pool's algorithm, fresh; the members fill them at the next rebuild. */
  private buildTiers (): void {
    const options = this.policy
    const balancerOptions = {
      pointsPerWeight: options.pointsPerWeight,
      balanceFactor: options.balanceFactor,
      tableSize: options.tableSize
    }
    const { hashKey, clientAddress } = traits[options.algorithm]
    const make = (): TierBalancers => ({
      balancer: algorithms[options.algorithm](balancerOptions),
      fallback: hashKey ? algorithms[options.hashFallback](balancerOptions) : null
    })
    const first = make()
    this.skipsTried = first.balancer.skipsTried === true
    this.keepsFull = WHOLE_TABLE.has(options.algorithm)
    this.tiers = new Tiers(make, options.overprovisioningFactor, options.panicThreshold, this.keepsFull, first)
    this.needsKey = hashKey
    this.needsIp = clientAddress || (hashKey && options.hashKey === 'ip')
  }

  private applyRetry (previous: ResolvedPoolOptions): void {
    const retry = this.policy.retry
    this.retryBudget.retune(retry.budgetPercent, retry.minRetriesPerSecond)
    // Requests under way keep the deadline they started with: their list holds them until they end.
    if (retry.deadline !== previous.retry.deadline) this.requestDeadlines = retry.deadline === 0 ? null : new Deadlines(retry.deadline)
  }

  private applyLimits (): void {
    const { maxInFlight, queue } = this.policy
    this.maxInFlight = maxInFlight === 0 ? Infinity : maxInFlight
    // Never back: requests that took their slot at the pick must find it taken at the pick (see `limited`).
    if (maxInFlight !== 0) this.limited = true
    const waiting = this.waiting
    if (queue === null) {
      this.waiting = null
      // No queue to wait in any more: those waiting are refused, as if their wait had run out.
      if (waiting !== null) for (const waiter of waiting.entries()) waiter.expire()
    } else if (waiting === null) {
      this.waiting = new WaitQueue(queue.size, queue.timeout)
    } else {
      waiting.resize(queue.size, queue.timeout)
    }
    // The rebuild counts room again and admits those waiting if there is some now.
    this.refresh()
  }

  /** Every member, sorted by id, including ineligible and draining ones. */
  get targets (): readonly Target[] {
    this.settle()
    return this.members
  }

  /** The targets new requests may go to, sorted by id (by tier, then id, when targets have priorities). */
  get eligible (): readonly Target[] {
    return this.tiers.eligible
  }

  /** The priority of the tier that takes requests now; -1 when none can. */
  get servingTier (): number {
    return this.tiers.serving
  }

  /** @internal Whether a request found no target for their load alone: every one that could serve is full, or the pool is. */
  get saturated (): boolean {
    return this.inFlight >= this.maxInFlight || (this.serving > 0 && this.servingWithRoom === 0)
  }

  get (id: string): Target | undefined {
    return this.byIdMap.get(id)
  }

  /** The pool's counters now. */
  stats (): PoolStats {
    return {
      inFlight: this.inFlight,
      activeRetries: this.activeRetries,
      noTarget: this.noTarget,
      retries: { ...this.retries },
      panic: this.panic,
      targets: this.memberSet.size,
      eligible: this.tiers.eligible.length
    }
  }

  /** @internal Chooses the target of a request's first try. */
  pick (input: PickInput): Target | undefined {
    const ctx = this.ctx
    ctx.tried = NO_TARGETS
    return this.choose(ctx, input)
  }

  /** @internal Chooses a target for a retry, never one in `tried`; undefined when every eligible target was tried. */
  pickAnother (input: PickInput, tried: readonly Target[]): Target | undefined {
    const ctx = this.ctx
    ctx.tried = tried
    if (this.skipsTried) {
      const t = this.choose(ctx, input)
      ctx.tried = NO_TARGETS
      if (t !== undefined && !tried.includes(t)) return t
    } else {
      // Rotating and random algorithms move on by themselves: a few picks usually find an untried target.
      for (let i = 0; i < 3; i++) {
        const t = this.choose(ctx, input)
        if (t === undefined) break
        if (!tried.includes(t)) {
          ctx.tried = NO_TARGETS
          return t
        }
      }
      ctx.tried = NO_TARGETS
    }
    // Retries are rare, so a scan is affordable here; it keeps the id order every replica shares.
    if (this.inFlight >= this.maxInFlight) return undefined
    for (const t of this.tiers.pickable()) if (!tried.includes(t) && !t.full) return t
    return undefined
  }

  private choose (ctx: PickContext, input: PickInput): Target | undefined {
    if (this.inFlight >= this.maxInFlight) return undefined
    ctx.poolInFlight = this.inFlight
    ctx.ip = input.ip
    ctx.key = input.key
    return this.tiers.pick(ctx, input)
  }

  /** @internal A request takes a slot of target: its first try is being sent, or (with limits) it was picked. */
  acquire (target: Target): void {
    target.inFlight++
    target.requests++
    this.inFlight++
    this.tiers.loadChanged(target)
    if (target.maxConnections !== 0 && target.inFlight >= target.maxConnections && !target.full) this.setFull(target, true)
  }

  /** @internal A slot of target is free again (a try ended, or a request that held it left). Called exactly once per acquire. */
  release (target: Target): void {
    target.inFlight--
    this.inFlight--
    this.tiers.loadChanged(target)
    if (target.full && target.inFlight < target.maxConnections) this.setFull(target, false)
    if (target.draining && target.inFlight === 0) this.finishDrain(target)
    if (this.waiting !== null && this.waiting.length > 0) this.scheduleAdmit()
  }

  /**
   * A target reached its limit, or left it: the pickable sets drop it or take it
   * back in one rebuild (no 'change' event: the members did not change), as
   * HAProxy takes a server at maxconn out of the running. Tables rebuilt in
   * whole keep it and pass over it per pick instead.
   */
  private setFull (target: Target, full: boolean): void {
    target.full = full
    if ((this.panic ? isLive : isServing)(target)) this.servingWithRoom += full ? -1 : 1
    if (!this.keepsFull) this.refresh()
  }

  /** @internal Queues a request that found every target full; false when the queue is full (or there is none). */
  enqueue (waiter: Waiter): boolean {
    if (this.waiting === null || !this.waiting.push(waiter)) return false
    // A slot may have freed since the pick that failed (a retry took and released one): look again.
    this.scheduleAdmit()
    return true
  }

  /**
   * Admits waiting requests, oldest first, while targets have room: each takes
   * its slot here and goes on. Run from setImmediate after the releases that
   * freed slots, so the retry of a failed try, which is decided in the same
   * turn as its release, keeps the slot it freed.
   */
  private readonly admit = (): void => {
    this.admitScheduled = false
    const queue = this.waiting as WaitQueue
    for (let waiter = queue.first(); waiter !== null; waiter = queue.first()) {
      const target = this.pick(waiter)
      if (target === undefined) return
      queue.remove(waiter)
      this.acquire(target)
      waiter.admit(target)
    }
  }

  private scheduleAdmit (): void {
    if (this.admitScheduled) return
    this.admitScheduled = true
    setImmediate(this.admit)
  }

  /** @internal Called with how every try ended (passive health, metrics). */
  onResult (listener: ResultListener): void {
    this.resultListeners.push(listener)
  }

  /** @internal Stops calling a listener onResult() added. */
  offResult (listener: ResultListener): void {
    const i = this.resultListeners.indexOf(listener)
    if (i !== -1) this.resultListeners.splice(i, 1)
  }

  /** @internal Reports how a try ended: feeds failure counters, latency and every listener. */
  record (target: Target, status: number, failure: FailureKind | null, latencyMs: number): void {
    if (failure === null ? status >= 500 : failure !== 'aborted' && failure !== 'queue') target.failures++
    else if (failure === 'aborted') target.aborted++
    // A timeout is a latency sample too: the slowest kind. Refused or abandoned tries say nothing about speed.
    if (failure === null || failure === 'timeout') target.observeLatency(latencyMs, performance.now())
    const listeners = this.resultListeners
    for (let i = 0; i < listeners.length; i++) listeners[i](target, status, failure, latencyMs)
  }

  /**
   * Runs fn with every membership and eligibility change it makes folded into
   * one rebuild and one 'change' event.
   */
  batch<T> (fn: () => T): T {
    this.batchDepth++
    try {
      return fn()
    } finally {
      if (--this.batchDepth === 0) this.flush()
    }
  }

  /** Adds a target (URL string or { url, weight, id }); throws FST_LB_INVALID_OPTION on bad input or a duplicate. */
  add (input: TargetInput): Target {
    const spec = resolveTarget(this.name, 'add(target)', input)
    if (this.byIdMap.has(spec.id)) throw invalidOption(this.name, 'add(target).id', spec.id, 'duplicates a target of the pool')
    if (this.urls().has(spec.url)) throw invalidOption(this.name, 'add(target).url', spec.url, 'duplicates a target of the pool')
    const target = newTarget(spec)
    this.batch(() => this.insert(target))
    return target
  }

  /** Removes a target after its in-flight requests finish; resolves when it is gone. */
  remove (id: string): Promise<void> {
    return this.drain(id)
  }

  /**
   * Maintenance: the target stays in the pool, keeps its health state and
   * in-flight requests, and takes no new picks until enable(id). Clients that
   * affinity pins to it move to another target, unless `keepSticky` keeps them
   * with it (HAProxy's drain state without the leaving).
   */
  disable (id: string, options: { keepSticky?: boolean } = {}): void {
    const target = this.require(id, 'disable(id)')
    const keepSticky = options.keepSticky ?? false
    if (typeof keepSticky !== 'boolean') throw invalidOption(this.name, `disable(${id}).keepSticky`, keepSticky, 'must be a boolean')
    target.enabled = false
    target.keepSticky = keepSticky
    this.refresh(target)
  }

  /**
   * @internal Health state as the active checks see it (health/): the target follows
   * the shared monitor of its URL; each change rebuilds the pickable set once.
   */
  setHealth (target: Target, healthy: boolean, lastCheck: LastCheck | null): void {
    target.lastCheck = lastCheck
    if (target.healthy === healthy) return
    target.healthy = healthy
    this.refresh(target)
  }

  /** @internal Outlier detection's verdict: ejected until `until` (epoch ms), or back when 0. */
  setEjectedUntil (target: Target, until: number): void {
    if (target.ejectedUntil === until) return
    target.ejectedUntil = until
    this.refresh(target)
  }

  /** @internal Slow start's ramp: the weight balancers use now, and when the ramp ends (0: not ramping). */
  setEffectiveWeight (target: Target, weight: number, slowStartUntil: number): void {
    target.effectiveWeight = weight
    target.slowStartUntil = slowStartUntil
    this.refresh(target)
  }

  /** Ends maintenance: the target takes picks again, as its health allows. */
  enable (id: string): void {
    const target = this.require(id, 'enable(id)')
    target.enabled = true
    target.keepSticky = false
    this.refresh(target)
  }

  /** Changes a target's weight; balancers see it at once. */
  setWeight (id: string, weight: number): void {
    const target = this.require(id, 'setWeight(id)')
    checkWeight(this.name, `setWeight(${id}).weight`, weight)
    const ratio = target.effectiveWeight / target.weight
    target.weight = weight
    target.effectiveWeight = weight * ratio
    this.batch(() => this.changed(target))
  }

  /**
   * Makes the members match a full list (a discovery provider's): adds new
   * targets, updates weights, drains those the list no longer holds and takes
   * back draining ones it holds again, all in one rebuild. Targets that stay keep
   * their state. The whole list is checked first: a bad entry throws
   * FST_LB_INVALID_OPTION and changes nothing.
   */
  reconcile (list: readonly TargetInput[]): void {
    const specs = resolveTargets(this.name, list)
    this.batch(() => {
      for (const step of this.reconcileSteps(specs, Infinity)) step()
    })
  }

  /**
   * reconcile() of a list that is already checked (no bad entry, no repeated
   * id or URL), in steps of at most STEP_SIZE entries. Each step is one batch,
   * so a pick sees the pool before or after a step, never part of one. Pools
   * without members, and the ring and table algorithms, take the list in one step.
   */
  [kReconcileSteps] (specs: readonly ResolvedTarget[]): Array<() => void> {
    const whole = this.memberSet.size === 0 || WHOLE_TABLE.has(this.options.algorithm)
    return this.reconcileSteps(specs, whole ? Infinity : STEP_SIZE)
  }

  /**
   * Plans a reconcile in O(n), with Maps rather than searches, so tens of
   * thousands of targets joining or leaving cost one pass. Entries that already
   * match cost nothing more; additions and re-weighing come before drains, so
   * the pool shrinks only once the new targets serve. A step re-checks each
   * entry, as the pool may have changed since the plan.
   */
  private reconcileSteps (specs: readonly ResolvedTarget[], size: number): Array<() => void> {
    this.urlIndex = null
    const listed = new Map<string, string>()
    for (const spec of specs) listed.set(spec.id, spec.url)
    const changing = specs.filter((spec) => {
      const target = this.byIdMap.get(spec.id)
      return target === undefined || target.url !== spec.url || target.draining || target.weight !== spec.weight ||
        target.maxConnections !== spec.maxConnections || target.priority !== spec.priority
    })
    const leaving: Target[] = []
    for (const target of this.byIdMap.values()) {
      if (!target.draining && listed.get(target.id) !== target.url) leaving.push(target)
    }
    const total = changing.length + leaving.length
    const steps: Array<() => void> = []
    for (let from = 0; from < total; from += size) {
      const to = Math.min(from + size, total)
      steps.push(() => this.batch(() => {
        for (let i = from; i < to; i++) {
          if (i < changing.length) {
            this.reconcileOne(changing[i])
            continue
          }
          const target = leaving[i - changing.length]
          if (this.memberSet.has(target) && listed.get(target.id) !== target.url) this.startDrain(target)
        }
      }))
    }
    return steps
  }

  private reconcileOne (spec: ResolvedTarget): void {
    let target = this.byIdMap.get(spec.id)
    if (target !== undefined && target.url !== spec.url) {
      // The id now names another address: the old target drains while the new one takes the id.
      this.startDrain(target)
      if (this.byIdMap.get(spec.id) === target) this.byIdMap.delete(spec.id)
      target = undefined
    }
    if (target === undefined) {
      this.insert(newTarget(spec))
      return
    }
    if (target.draining) this.undrain(target)
    if (target.weight !== spec.weight) this.setWeight(target.id, spec.weight)
    if (target.maxConnections !== spec.maxConnections || target.priority !== spec.priority) {
      if (spec.maxConnections !== 0) this.limited = true
      target.maxConnections = spec.maxConnections
      target.full = spec.maxConnections !== 0 && target.inFlight >= spec.maxConnections
      target.priority = spec.priority
      this.changed(target)
    }
  }

  /**
   * Stops new picks of a target (sticky clients may still reach it), lets its
   * in-flight requests finish, then removes it. Resolves when it has left, or
   * when reconcile() took it back.
   */
  drain (id: string): Promise<void> {
    const target = this.require(id, 'drain(id)')
    return new Promise((resolve) => {
      const waiting = this.drains.get(target)
      if (waiting !== undefined) waiting.push(resolve)
      else this.drains.set(target, [resolve])
      this.startDrain(target)
    })
  }

  /** @internal Recomputes the eligible set after a target's state changed: once, or once per batch() around it. */
  refresh (target?: Target): void {
    this.batch(() => {
      if (target !== undefined) this.changed(target)
      else this.pending()
    })
  }

  private require (id: string, field: string): Target {
    const target = this.byIdMap.get(id)
    if (target === undefined) throw invalidOption(this.name, field, id, 'is not a target of the pool')
    return target
  }

  private pending (): PendingChange {
    if (this.pendingChange === null) this.pendingChange = { added: [], removed: [], updated: [], updatedSet: new Set() }
    return this.pendingChange
  }

  private insert (target: Target): void {
    // Once a target has a limit, requests take their slot at the pick: it never goes back, so no request is counted twice.
    if (target.maxConnections !== 0) this.limited = true
    this.byIdMap.set(target.id, target)
    this.memberSet.add(target)
    this.countUrl(target.url, 1)
    this.members.push(target)
    this.membersUnsorted = true
    this.pending().added.push(target)
  }

  private changed (target: Target): void {
    const change = this.pending()
    if (change.updatedSet.has(target)) return
    change.updatedSet.add(target)
    change.updated.push(target)
  }

  /** Stops new picks of target; it leaves at once when idle, else when its last request ends (release()). */
  private startDrain (target: Target): void {
    if (target.draining) return
    target.draining = true
    this.batch(() => this.changed(target))
    this.tunnels.draining(target)
    if (target.inFlight === 0) this.finishDrain(target)
  }

  private undrain (target: Target): void {
    target.draining = false
    this.tunnels.undrained(target)
    const waiting = this.drains.get(target) ?? []
    this.drains.delete(target)
    for (const resolve of waiting) resolve()
    this.changed(target)
  }

  private finishDrain (target: Target): void {
    // Membership, not the id, says whether it is still here: reconcile() may have given its id to a new target.
    if (!this.memberSet.delete(target)) return
    if (this.byIdMap.get(target.id) === target) this.byIdMap.delete(target.id)
    this.countUrl(target.url, -1)
    // `members` is compacted once, by settle(), however many targets leave in one batch.
    this.membersDeparted = true
    this.batch(() => {
      this.pending().removed.push(target)
    })
    const waiting = this.drains.get(target) ?? []
    this.drains.delete(target)
    for (const resolve of waiting) resolve()
  }

  private urls (): Map<string, number> {
    if (this.urlIndex === null) {
      this.urlIndex = new Map()
      for (const target of this.memberSet) this.countUrl(target.url, 1)
    }
    return this.urlIndex
  }

  private countUrl (url: string, delta: 1 | -1): void {
    const index = this.urlIndex
    if (index === null) return
    const count = (index.get(url) ?? 0) + delta
    if (count > 0) index.set(url, count)
    else index.delete(url)
  }

  /** Brings `members` up to date with memberSet, sorted by id: O(n) after removals, O(n log n) after additions. */
  private settle (): void {
    if (this.membersDeparted) {
      const memberSet = this.memberSet
      this.members = this.members.filter((t) => memberSet.has(t))
      this.membersDeparted = false
    }
    if (this.membersUnsorted) {
      this.members.sort(byId)
      this.membersUnsorted = false
    }
  }

  private flush (): void {
    const change = this.pendingChange
    if (change === null) return
    this.pendingChange = null
    this.settle()
    const members = this.members
    // Envoy's panic mode (in Tiers): with too few healthy targets, spreading over all beats overloading the few.
    const tiers = this.tiers
    tiers.update(members)
    const panic = tiers.panic
    const serves = panic ? isLive : isServing
    this.serving = 0
    this.servingWithRoom = 0
    for (const t of members) {
      if (!serves(t)) continue
      this.serving++
      if (!t.full) this.servingWithRoom++
    }
    if (this.waiting !== null && this.waiting.length > 0) this.scheduleAdmit()
    // Before 'change': its listeners may rebuild again, and the last word must be the latest state.
    if (panic !== this.panic) {
      this.panic = panic
      this.emit('panic', panic)
    }
    const { added, removed, updated } = change
    if (added.length > 0 || removed.length > 0 || updated.length > 0) {
      this.emit('change', { added, removed, updated } satisfies MembershipChange)
    }
  }
}
