import type { FastifyRequest } from 'fastify'
import type { Pool } from '../../lib/pool/pool'
import type { Target } from '../../lib/pool/target'
import { readPickInput } from '../../lib/forward/pick-input'

/** The first-try pick of a request-like object, as the route's pick hook makes it (without affinity). */
export function pickFor (pool: Pool, request: object): Target | undefined {
  return pool.pick(readPickInput(pool, request as FastifyRequest, { key: undefined, ip: '' }))
}
