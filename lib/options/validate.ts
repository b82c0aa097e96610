import { invalidOption } from '../errors'

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The largest weight a target may have: enough for any ratio, small enough for rings and tables to stay bounded. */
export const MAX_WEIGHT = 1_000_000

/** A target's weight: a positive integer up to MAX_WEIGHT (option, runtime API and discovery alike). */
export function checkWeight (pool: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_WEIGHT) {
    throw invalidOption(pool, field, value, `must be a positive integer (at most ${MAX_WEIGHT})`)
  }
  return value
}
