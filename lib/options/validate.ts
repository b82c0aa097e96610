import { invalidOption } from '../errors'

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * An options object whose keys are all known. `what` names the kind of option
 * in the error for an unknown key ("is not a retry option").
 */
export function checkRecord (
  pool: string,
  field: string,
  value: unknown,
  keys: ReadonlySet<string>,
  what: string = field,
  shape = 'must be an object'
): Record<string, unknown> {
  if (!isRecord(value)) throw invalidOption(pool, field, value, shape)
  for (const key of Object.keys(value)) {
    if (!keys.has(key)) {
      const article = /^[aeiou]/i.test(what) ? 'an' : 'a'
      throw invalidOption(pool, field.startsWith('(') ? key : `${field}.${key}`, value[key], `is not ${article} ${what} option`)
    }
  }
  return value
}

export function checkInteger (pool: string, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(pool, field, value, `must be an integer from ${min} to ${max}`)
  }
  return value
}

export function checkNumber (pool: string, field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidOption(pool, field, value, `must be a number from ${min} to ${max}`)
  }
  return value
}

/** A boolean option; `fallback` when it is left out. */
export function checkBoolean (pool: string, field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalidOption(pool, field, value, 'must be a boolean')
  return value
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
