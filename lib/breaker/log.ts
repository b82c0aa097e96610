import type { Logger } from '../types'
import type { Pool } from '../pool/pool'
import type { CircuitEvent } from './breaker'

/** Logs a pool's circuit opening (warn) and closing (info), as the health registry logs a target's health. */
export function logCircuit (pool: Pool, log: Logger): void {
  pool.on('circuit', (event: CircuitEvent) => {
    const line = { pool: pool.name, from: event.from, to: event.to, failureRatio: event.failureRatio, slowCallRatio: event.slowCallRatio, calls: event.calls }
    if (event.to === 'open') log.warn(line, 'fastify-lb: circuit breaker opened')
    else if (event.to === 'closed') log.info(line, 'fastify-lb: circuit breaker closed')
  })
}
