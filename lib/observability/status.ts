import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { LoadBalancer } from '../route/load-balancer'
import type { MachineView, ResolvedStatusOptions } from './options'
import type { Pool } from '../pool/pool'
import { prefersHtml, renderStatusPage } from './status-html'
import type { CircuitStatus, PoolStatus, StatusReport, TargetStatus, SplitStatus } from './status-report'
import type { CircuitBreaker } from '../breaker/breaker'
import type { Target } from '../pool/target'
import { UNAVAILABLE_REASONS } from '../forward/fallback-options'
import type { StatusHistory } from './history'
import type { Split } from '../route/split'
import { changeSchema } from '../admin/changes'

const nullableNumber = { type: ['number', 'null'] }

export const targetSchema = {
  type: 'object',
  required: ['id', 'state', 'eligible', 'weight', 'effectiveWeight', 'inFlight', 'requests', 'failures', 'aborted', 'ewmaMs', 'lastCheck', 'ejectedUntil', 'slowStartUntil'],
  properties: {
    id: { type: 'string' },
    url: { type: 'string' },
    state: { type: 'string', enum: ['healthy', 'slow-start', 'ejected', 'unhealthy', 'disabled', 'draining'] },
    eligible: { type: 'boolean' },
    weight: { type: 'number' },
    effectiveWeight: { type: 'number' },
    inFlight: { type: 'integer' },
    tunnels: { type: 'integer' },
    requests: { type: 'integer' },
    failures: { type: 'integer' },
    aborted: { type: 'integer' },
    ewmaMs: nullableNumber,
    lastCheck: {
      type: ['object', 'null'],
      required: ['at', 'ok'],
      properties: { at: { type: 'number' }, ok: { type: 'boolean' }, error: { type: 'string' }, check: { type: 'integer' }, type: { type: 'string' } }
    },
    ejectedUntil: nullableNumber,
    slowStartUntil: nullableNumber,
    priority: { type: 'integer' },
    maxConnections: { type: 'integer' },
    full: { type: 'boolean' },
    workers: { type: 'array', items: { type: 'object', properties: { worker: { type: 'integer' }, inFlight: { type: 'integer' } } } }
  }
} as const

const countsOf = (keys: readonly string[]): object => ({
  type: 'object',
  required: keys,
  properties: Object.fromEntries(keys.map((k) => [k, { type: 'integer' }]))
})

const circuitSchema = {
  type: ['object', 'null'],
  required: ['state', 'failureRatio', 'slowCallRatio', 'calls', 'rejected', 'openedAt', 'halfOpenAt'],
  properties: {
    state: { type: 'string', enum: ['closed', 'half-open', 'open'] },
    failureRatio: { type: 'number' },
    slowCallRatio: { type: 'number' },
    calls: { type: 'integer' },
    rejected: { type: 'integer' },
    openedAt: nullableNumber,
    halfOpenAt: nullableNumber
  }
} as const

const numbers = { type: 'array', items: { type: 'number' } } as const

const historySchema = {
  type: ['object', 'null'],
  required: ['intervalMs', 'samples', 'latency', 'sampledAt', 'pools'],
  properties: {
    intervalMs: { type: 'integer' },
    samples: { type: 'integer' },
    latency: { type: 'boolean' },
    sampledAt: numbers,
    pools: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'targets'],
        properties: {
          name: { type: 'string' },
          targets: {
            type: 'array',
            items: {
              type: 'object',
              required: ['id', 'requestsPerSecond', 'errorsPerSecond'],
              properties: {
                id: { type: 'string' },
                requestsPerSecond: numbers,
                errorsPerSecond: numbers,
                p99Ms: { type: 'array', items: nullableNumber }
              }
            }
          }
        }
      }
    }
  }
} as const

export const poolSchema = {
  type: 'object',
  required: ['name', 'algorithm', 'eligible', 'panic', 'inFlight', 'noTarget', 'retries', 'circuit', 'targets'],
  properties: {
    name: { type: 'string' },
    algorithm: { type: 'string' },
    eligible: { type: 'integer' },
    panic: { type: 'boolean' },
    inFlight: { type: 'integer' },
    noTarget: { type: 'integer' },
    servingTier: { type: 'integer' },
    maxInFlight: { type: 'integer' },
    queued: { type: ['integer', 'null'] },
    overloaded: countsOf(['full', 'queueFull', 'queueTimeout']),
    fallbacks: { type: ['object', 'null'], properties: Object.fromEntries(UNAVAILABLE_REASONS.map((r) => [r, { type: 'integer' }])) },
    retries: {
      type: 'object',
      required: ['attempted', 'succeeded', 'budgetExhausted', 'limitExceeded', 'deadlineExceeded'],
      properties: {
        attempted: { type: 'integer' },
        succeeded: { type: 'integer' },
        budgetExhausted: { type: 'integer' },
        limitExceeded: { type: 'integer' },
        deadlineExceeded: { type: 'integer' }
      }
    },
    circuit: circuitSchema,
    targets: { type: 'array', items: targetSchema }
  }
} as const

export const splitSchema = {
  type: 'object',
  required: ['route', 'arms', 'requests'],
  properties: {
    route: { type: 'string' },
    arms: { type: 'array', items: { type: 'object', required: ['pool', 'weight'], properties: { pool: { type: 'string' }, weight: { type: 'integer' } } } },
    requests: { type: 'object', additionalProperties: { type: 'integer' } }
  }
} as const

/** The JSON schema of the status report: Fastify compiles a serializer from it. */
export const statusSchema = {
  type: 'object',
  required: ['generatedAt', 'pools', 'history', 'splits'],
  properties: {
    generatedAt: { type: 'number' },
    history: historySchema,
    cluster: {
      type: 'object',
      properties: {
        worker: { type: 'integer' },
        workers: {
          type: 'array',
          items: { type: 'object', properties: { id: { type: 'integer' }, pid: { type: 'integer' }, checking: { type: 'boolean' }, inFlight: { type: 'integer' } } }
        }
      }
    },
    splits: { type: 'array', items: splitSchema },
    changes: { type: 'array', items: changeSchema },
    pools: { type: 'array', items: poolSchema }
  }
} as const

function round (value: number): number {
  return Math.round(value * 1000) / 1000
}

export function targetStatus (target: Target, eligible: ReadonlySet<Target>, hideUrls: boolean, now: number): TargetStatus {
  const check = target.lastCheck
  return {
    id: target.id,
    url: hideUrls ? undefined : target.url,
    state: target.state,
    eligible: eligible.has(target),
    weight: target.weight,
    effectiveWeight: round(target.effectiveWeight),
    inFlight: target.inFlight,
    tunnels: target.tunnels,
    requests: target.requests,
    failures: target.failures,
    aborted: target.aborted,
    ewmaMs: target.ewmaStamp === 0 ? null : round(target.decayedEwma(now)),
    lastCheck: check === null ? null : { at: check.at, ok: check.ok, error: check.error, check: check.check, type: check.type },
    ejectedUntil: target.ejectedUntil === 0 ? null : target.ejectedUntil,
    slowStartUntil: target.slowStartUntil === 0 ? null : target.slowStartUntil,
    priority: target.priority,
    maxConnections: target.maxConnections,
    full: target.full
  }
}

function circuitStatus (breaker: CircuitBreaker | null, epochNow: number): CircuitStatus | null {
  if (breaker === null) return null
  const s = breaker.snapshot()
  return {
    state: s.state,
    failureRatio: round(s.failureRatio),
    slowCallRatio: round(s.slowCallRatio),
    calls: s.calls,
    rejected: s.rejected,
    openedAt: s.openedMsAgo === null ? null : Math.round(epochNow - s.openedMsAgo),
    halfOpenAt: s.halfOpenInMs === null ? null : Math.round(epochNow + s.halfOpenInMs)
  }
}

export function poolStatus (pool: Pool, hideUrls: boolean, now: number): PoolStatus {
  const eligible = new Set(pool.eligible)
  return {
    name: pool.name,
    algorithm: pool.options.algorithm,
    eligible: eligible.size,
    panic: pool.panic,
    inFlight: pool.inFlight,
    noTarget: pool.noTarget,
    servingTier: pool.servingTier,
    maxInFlight: pool.options.maxInFlight,
    queued: pool.waiting === null ? null : pool.waiting.length,
    overloaded: { full: pool.overloaded.full, queueFull: pool.overloaded.queue_full, queueTimeout: pool.overloaded.queue_timeout },
    fallbacks: pool.options.fallback === null ? null : { ...pool.fallbacks },
    retries: {
      attempted: pool.retries.attempted,
      succeeded: pool.retries.succeeded,
      budgetExhausted: pool.retries.budget_exhausted,
      limitExceeded: pool.retries.limit_exceeded,
      deadlineExceeded: pool.retries.deadline_exceeded
    },
    circuit: circuitStatus(pool.breaker, Date.now()),
    targets: pool.targets.map((t) => targetStatus(t, eligible, hideUrls, now))
  }
}

/** One split's status. */
export function splitStatus (split: Split): SplitStatus {
  return { route: split.route, arms: split.armList, requests: split.requests }
}

/** Every split's status now. */
export function splitsStatus (lb: LoadBalancer): SplitStatus[] {
  const splits: SplitStatus[] = []
  lb.eachSplitNow((split) => splits.push(splitStatus(split)))
  return splits
}

/** A snapshot of every pool and target, with their recent history when it is sampled. */
export function statusReport (lb: LoadBalancer, hideUrls: boolean, history: StatusHistory | null): StatusReport {
  const now = performance.now()
  const pools: PoolStatus[] = []
  for (const pool of lb.allPools()) pools.push(poolStatus(pool, hideUrls, now))
  const report: StatusReport = { generatedAt: Date.now(), pools, history: history === null ? null : history.report(), splits: splitsStatus(lb) }
  // Only with the admin API: without it nothing changes a pool from outside the gateway's code.
  if (lb.changeLog !== null) report.changes = lb.changeLog.list()
  return report
}

/**
 * Adds the status route: JSON for machines, an HTML page when the client
 * prefers text/html (a browser), or as `?format=json|html` says.
 */
export function addStatusRoute (fastify: FastifyInstance, lb: LoadBalancer, options: ResolvedStatusOptions, history: StatusHistory | null, machine: MachineView | null = null): void {
  fastify.route({
    method: 'GET',
    url: options.path,
    onRequest: options.onRequest.length > 0 ? options.onRequest : undefined,
    schema: {
      querystring: { type: 'object', properties: { format: { type: 'string', enum: ['json', 'html'] } } },
      response: { 200: statusSchema }
    },
    async handler (request: FastifyRequest, reply: FastifyReply) {
      const own = statusReport(lb, options.hideUrls, history)
      const report = machine === null ? own : await machine.status(own)
      const format = (request.query as { format?: string }).format
      reply.header('cache-control', 'no-store').header('vary', 'accept')
      if (format === 'html' || (format === undefined && prefersHtml(request.headers.accept))) {
        return reply.type('text/html; charset=utf-8').send(renderStatusPage(report, options.refreshSeconds))
      }
      return reply.send(report)
    }
  })
}
