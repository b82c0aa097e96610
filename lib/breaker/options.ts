import { OptionReader } from '../options/reader'

/** A pool's circuit breaker (pool option `circuitBreaker`); docs/circuit-breaker.md. */
export interface CircuitBreakerOptions {
  /** Share of failed calls in the window (above 0, at most 1) that opens the circuit (default 0.5). */
  failureRatio?: number
  /** Share of slow calls in the window (above 0, at most 1) that opens the circuit; needs slowCallMs (default 1). */
  slowCallRatio?: number
  /** A call that takes longer than this many ms to its answer's headers is slow (default: no call is slow). */
  slowCallMs?: number
  /** The sliding window, in ms: whole seconds, one bucket each (default 10000). */
  window?: number
  /** Calls the window must hold before a ratio can open the circuit (default 20). */
  minRequests?: number
  /** How long an open circuit answers every request itself, in ms, before trial requests (default 10000). */
  openFor?: number
  /** Trial requests let through when half-open; their outcomes close or reopen the circuit (default 10). */
  halfOpenRequests?: number
}

export interface ResolvedCircuitBreaker {
  failureRatio: number
  slowCallRatio: number
  /** Infinity when slow calls are not counted. */
  slowCallMs: number
  window: number
  minRequests: number
  openFor: number
  halfOpenRequests: number
}

const KEYS = ['failureRatio', 'slowCallRatio', 'slowCallMs', 'window', 'minRequests', 'openFor', 'halfOpenRequests']
const MAX_MS = 3_600_000
const WINDOW_RULE = `must be whole seconds in ms: a multiple of 1000 from 1000 to ${MAX_MS}`

/** A ratio of 0 would open the circuit on the first call, so the range starts above it. */
function readRatio (r: OptionReader, key: string, fallback: number): number {
  const value = r.value(key) ?? fallback
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) r.fail(key, 'must be a number above 0 and at most 1', value)
  return value
}

/** Validates `circuitBreaker` (false or undefined: none). Throws FST_LB_INVALID_OPTION naming the field. */
export function resolveCircuitBreaker (pool: string, value: unknown): ResolvedCircuitBreaker | null {
  if (value === undefined || value === false) return null
  const r = OptionReader.record(pool, 'circuitBreaker', value, KEYS, 'circuit breaker', 'must be an object or false')
  const slowCallMs = r.optionalInteger('slowCallMs', 1, MAX_MS)
  if (slowCallMs === undefined && r.has('slowCallRatio')) r.fail('slowCallRatio', 'needs slowCallMs, without which no call is slow')
  const window = r.integer('window', 10_000, 1000, MAX_MS, WINDOW_RULE)
  if (window % 1000 !== 0) r.fail('window', WINDOW_RULE)
  return {
    failureRatio: readRatio(r, 'failureRatio', 0.5),
    slowCallRatio: readRatio(r, 'slowCallRatio', 1),
    slowCallMs: slowCallMs ?? Infinity,
    window,
    minRequests: r.integer('minRequests', 20, 1, 1_000_000),
    openFor: r.integer('openFor', 10_000, 1, MAX_MS),
    halfOpenRequests: r.integer('halfOpenRequests', 10, 1, 10_000)
  }
}
