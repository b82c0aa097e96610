import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { LoadBalancer } from '../route/load-balancer'
import type { Pool } from '../pool/pool'
import type { Split } from '../route/split'
import { MAX_WEIGHT } from '../options/validate'
import { poolSchema, poolStatus, splitSchema, splitStatus, splitsStatus, targetSchema, targetStatus } from '../observability/status'
import { ChangeLog, changeSchema, describeChange, type AdminChange } from './changes'
import { adminState, configurePool, editSplit, editTarget, type TargetEdit } from './apply'
import type { ResolvedAdminOptions } from './options'

/** Codes of the admin API's own refusals; a bad value is FST_LB_INVALID_OPTION, as in the plugin's options. */
type AdminErrorCode = 'FST_LB_NOT_FOUND' | 'FST_LB_DRAINING' | 'FST_LB_INVALID_OPTION' | 'FST_LB_ADMIN_FAILED'

function refuse (reply: FastifyReply, statusCode: 400 | 404 | 409 | 500, code: AdminErrorCode, message: string): FastifyReply {
  return reply.code(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode] as string, message })
}

const changesSchema = { type: 'array', items: changeSchema } as const
const poolParams = { type: 'object', required: ['pool'], properties: { pool: { type: 'string' } } } as const

/** Unknown names are refused rather than stripped (Fastify's validator removes properties `additionalProperties: false` forbids). */
function onlyKeys (keys: string[]): { propertyNames: { enum: string[] } } {
  return { propertyNames: { enum: keys } }
}

interface PoolParams { pool: string }
interface TargetParams extends PoolParams { target: string }
interface SplitParams { route: string }

function isInvalidOption (err: unknown): err is Error & { code: 'FST_LB_INVALID_OPTION' } {
  return err instanceof Error && (err as { code?: unknown }).code === 'FST_LB_INVALID_OPTION'
}

/**
 * The admin API's routes, in a context of their own: its error handler answers JSON without a stack trace,
 * whatever error handler the gateway has. Every change is logged once (info, on the request's logger, so the
 * line carries its request id), listed on the status page and emitted as `app.lb`'s 'admin' event.
 */
export async function addAdminRoutes (fastify: FastifyInstance, lb: LoadBalancer, options: ResolvedAdminOptions, hideUrls: boolean): Promise<void> {
  const log = new ChangeLog()
  lb.changeLog = log
  const { prefix } = options
  const onRequest = options.onRequest.length > 0 ? options.onRequest : undefined

  const record = (request: FastifyRequest, changes: ReadonlyArray<AdminChange | null>): AdminChange[] => {
    const made = changes.filter((c): c is AdminChange => c !== null)
    for (const change of made) {
      request.log.info({ lbChange: change }, `fastify-lb: admin changed the ${describeChange(change)}`)
      log.push(change)
      // The change is made: a listener's failure is the listener's, and the caller still learns what changed.
      try {
        lb.emit('admin', change)
      } catch (err) {
        request.log.error({ err }, "fastify-lb: an 'admin' event listener threw")
      }
    }
    return made
  }

  const poolOf = (reply: FastifyReply, name: string): Pool | null => {
    const pool = lb.findPool(name) ?? null
    if (pool === null) refuse(reply, 404, 'FST_LB_NOT_FOUND', `No pool "${name}"`)
    return pool
  }

  /** Runs a change; a bad value answers 400 with its FST_LB_INVALID_OPTION message, and nothing has changed. */
  const attempt = <T>(reply: FastifyReply, change: () => T): { ok: true, value: T } | { ok: false } => {
    try {
      return { ok: true, value: change() }
    } catch (err) {
      if (!isInvalidOption(err)) throw err
      refuse(reply, 400, 'FST_LB_INVALID_OPTION', err.message)
      return { ok: false }
    }
  }

  await fastify.register(async function lbAdmin (admin) {
    admin.setErrorHandler(function adminError (err: FastifyError, request, reply) {
      // As Fastify's own handler: the error's status, else one a hook (a guard) set on the reply before throwing.
      const status = err.statusCode ?? (reply.statusCode >= 400 ? reply.statusCode : 500)
      if (status >= 400 && status < 500) {
        return reply.code(status).send({ statusCode: status, code: err.code, error: STATUS_CODES[status] ?? 'Bad Request', message: err.message })
      }
      request.log.error({ err }, 'fastify-lb: admin call failed')
      return refuse(reply, 500, 'FST_LB_ADMIN_FAILED', 'The admin call failed; the gateway log has the error')
    })

    admin.get(`${prefix}/pools`, {
      onRequest,
      schema: { response: { 200: { type: 'object', required: ['pools', 'splits'], properties: { pools: { type: 'array', items: poolSchema }, splits: { type: 'array', items: splitSchema } } } } }
    }, async () => {
      const now = performance.now()
      return { pools: [...lb.allPools()].map((pool) => poolStatus(pool, hideUrls, now)), splits: splitsStatus(lb) }
    })

    admin.get<{ Params: PoolParams }>(`${prefix}/pools/:pool`, {
      onRequest,
      schema: { params: poolParams, response: { 200: poolSchema } }
    }, async (request, reply) => {
      const pool = poolOf(reply, request.params.pool)
      return pool === null ? reply : poolStatus(pool, hideUrls, performance.now())
    })

    admin.patch<{ Params: TargetParams, Body: TargetEdit }>(`${prefix}/pools/:pool/targets/:target`, {
      onRequest,
      schema: {
        params: { type: 'object', required: ['pool', 'target'], properties: { pool: { type: 'string' }, target: { type: 'string' } } },
        body: {
          type: 'object',
          minProperties: 1,
          ...onlyKeys(['weight', 'state', 'keepSticky']),
          properties: {
            weight: { type: 'integer', minimum: 1, maximum: MAX_WEIGHT },
            state: { type: 'string', enum: ['enabled', 'disabled', 'draining'] },
            keepSticky: { type: 'boolean' }
          }
        },
        response: {
          '2xx': { type: 'object', required: ['pool', 'target', 'changes'], properties: { pool: { type: 'string' }, target: { anyOf: [targetSchema, { type: 'null' }] }, changes: changesSchema } }
        }
      }
    }, async (request, reply) => {
      const pool = poolOf(reply, request.params.pool)
      if (pool === null) return reply
      const id = request.params.target
      const target = pool.get(id)
      if (target === undefined) return refuse(reply, 404, 'FST_LB_NOT_FOUND', `No target "${id}" in pool "${pool.name}"`)
      // A drain cannot be taken back from here: the target leaves once its requests end.
      if (adminState(target) === 'draining') return refuse(reply, 409, 'FST_LB_DRAINING', `Target "${id}" of pool "${pool.name}" is draining: it leaves the pool once its requests end`)
      const result = attempt(reply, () => editTarget(pool, target, request.body, Date.now()))
      if (!result.ok) return reply
      const changes = record(request, result.value)
      // A drained target that had no request in flight has left already: null.
      const now = pool.get(id) === target ? targetStatus(target, new Set(pool.eligible), hideUrls, performance.now()) : null
      return reply.code(target.draining || now === null ? 202 : 200).send({ pool: pool.name, target: now, changes })
    })

    admin.get(`${prefix}/splits`, {
      onRequest,
      schema: { response: { 200: { type: 'object', required: ['splits'], properties: { splits: { type: 'array', items: splitSchema } } } } }
    }, async () => ({ splits: splitsStatus(lb) }))

    admin.put<{ Params: SplitParams, Body: { weights: Record<string, number> } }>(`${prefix}/splits/:route`, {
      onRequest,
      schema: {
        params: { type: 'object', required: ['route'], properties: { route: { type: 'string' } } },
        body: {
          type: 'object',
          required: ['weights'],
          ...onlyKeys(['weights']),
          properties: { weights: { type: 'object', additionalProperties: { type: 'integer' } } }
        },
        response: { 200: { type: 'object', required: ['split', 'changes'], properties: { split: splitSchema, changes: changesSchema } } }
      }
    }, async (request, reply) => {
      const split: Split | undefined = lb.findSplit(request.params.route)
      if (split === undefined) return refuse(reply, 404, 'FST_LB_NOT_FOUND', `No route "${request.params.route}" splits its traffic`)
      const result = attempt(reply, () => editSplit(split, request.body.weights, Date.now()))
      if (!result.ok) return reply
      return { split: splitStatus(split), changes: record(request, [result.value]) }
    })

    admin.post<{ Params: PoolParams, Body: Record<string, unknown> }>(`${prefix}/pools/:pool/configure`, {
      onRequest,
      schema: {
        params: poolParams,
        body: { type: 'object' },
        response: {
          200: { type: 'object', required: ['pool', 'changed', 'changes'], properties: { pool: { type: 'string' }, changed: { type: 'array', items: { type: 'string' } }, changes: changesSchema } }
        }
      }
    }, async (request, reply) => {
      const pool = poolOf(reply, request.params.pool)
      if (pool === null) return reply
      const result = attempt(reply, () => configurePool(pool, request.body, Date.now()))
      if (!result.ok) return reply
      const change = result.value
      return { pool: pool.name, changed: change?.changed ?? [], changes: record(request, [change]) }
    })
  })
}
