import { invalidOption } from '../errors'
import { checkWeight, isRecord } from './validate'

/** A key of an options object, or an index of an options array. */
export type OptionKey = string | number

/**
 * How a secret (a password, a private key) or a PEM blob appears in an error
 * message: its type and length, never its contents.
 */
function shapeOf (value: unknown): unknown {
  if (value === undefined) return undefined
  if (typeof value === 'string') return `<${value.length} character${value.length === 1 ? '' : 's'}>`
  if (Buffer.isBuffer(value)) return `<${value.length} byte${value.length === 1 ? '' : 's'}>`
  return `<${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value}>`
}

/** How an options object is refused: `shape` is the message; `secret` shows the value by type and length only. */
export interface ObjectRules {
  shape?: string
  secret?: boolean
}

const METHOD_NAME = /^[A-Za-z]+$/

/** "a retry option", "an affinity option". */
function optionOf (what: string): string {
  return `${/^[aeiou]/i.test(what) ? 'an' : 'a'} ${what} option`
}

/**
 * Reads one options object (or array) of one pool, naming `pool` and the full
 * field path in every FST_LB_INVALID_OPTION, so each option file states only
 * its rules. A method given a fallback uses it for a key that is undefined or
 * null, as JSON configurations write "the default" either way; an `optional*`
 * method leaves only an undefined key out, so a null there is refused.
 */
export class OptionReader {
  /**
   * `prefix` is the object's own path ('retry', 'discovery[0].tls'); '' for the
   * top of a pool's or the plugin's options, whose keys are named bare.
   */
  constructor (readonly pool: string, readonly prefix: string, readonly spec: Readonly<Record<string, unknown>>) {}

  /**
   * `value` as an options object; `field` names it in the error. Fields in
   * parentheses ('(pool)', '(options)') stand for the top, whose keys are named bare.
   */
  static of (pool: string, field: string, value: unknown, { shape = 'must be an object', secret = false }: ObjectRules = {}): OptionReader {
    if (!isRecord(value)) throw invalidOption(pool, field, secret ? shapeOf(value) : value, shape)
    return new OptionReader(pool, field.startsWith('(') ? '' : field, value)
  }

  /** An options object whose keys are all in `keys`; `what` names it in the error for another key ("is not a retry option"). */
  static record (pool: string, field: string, value: unknown, keys: Iterable<string>, what = field, shape?: string): OptionReader {
    return OptionReader.of(pool, field, value, { shape }).known(keys, `is not ${optionOf(what)}`)
  }

  /** The path of `key` in messages: 'retry.attempts', 'retry.statuses[1]'. */
  path (key: OptionKey): string {
    if (typeof key === 'number') return `${this.prefix}[${key}]`
    return this.prefix === '' ? key : `${this.prefix}.${key}`
  }

  value (key: OptionKey): unknown {
    return this.spec[key]
  }

  /** Whether the key is given; a null counts as given. */
  has (key: OptionKey): boolean {
    return this.spec[key] !== undefined
  }

  /** The keys of an options object, or the indexes of an options array. */
  keys (): OptionKey[] {
    return Array.isArray(this.spec) ? this.spec.map((_v: unknown, i) => i) : Object.keys(this.spec)
  }

  /** Throws FST_LB_INVALID_OPTION for `key`, showing `value` (the key's own unless given). */
  fail (key: OptionKey, why: string, value: unknown = this.spec[key]): never {
    throw invalidOption(this.pool, this.path(key), value, why)
  }

  /** Like fail, showing only the value's type and length. */
  failSecret (key: OptionKey, why: string, value: unknown = this.spec[key]): never {
    return this.fail(key, why, shapeOf(value))
  }

  /** Refuses the first key not in `keys` with `why`; keys for which `secret` holds are shown by type and length only. */
  known (keys: Iterable<string>, why: string, secret: (key: string) => boolean = () => false): this {
    const allowed = keys instanceof Set ? keys as ReadonlySet<string> : new Set(keys)
    for (const key of Object.keys(this.spec)) {
      if (allowed.has(key)) continue
      if (secret(key)) this.failSecret(key, why)
      this.fail(key, why)
    }
    return this
  }

  private get (key: OptionKey, fallback: unknown): unknown {
    const value = this.spec[key]
    return value === undefined || (value === null && fallback !== undefined) ? fallback : value
  }

  integer (key: OptionKey, fallback: number | undefined, min: number, max: number, why = `must be an integer from ${min} to ${max}`): number {
    const value = this.get(key, fallback)
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.fail(key, why, value)
    return value
  }

  optionalInteger (key: OptionKey, min: number, max: number): number | undefined {
    return this.has(key) ? this.integer(key, undefined, min, max) : undefined
  }

  number (key: OptionKey, fallback: number | undefined, min: number, max: number): number {
    const value = this.get(key, fallback)
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      this.fail(key, `must be a number from ${min} to ${max}`, value)
    }
    return value
  }

  boolean (key: OptionKey, fallback: boolean | undefined): boolean {
    const value = this.get(key, fallback)
    if (typeof value !== 'boolean') this.fail(key, 'must be a boolean', value)
    return value
  }

  optionalBoolean (key: OptionKey): boolean | undefined {
    return this.has(key) ? this.boolean(key, undefined) : undefined
  }

  /** A non-empty string. */
  string (key: OptionKey, fallback?: string): string {
    const value = this.get(key, fallback)
    if (typeof value !== 'string' || value.length === 0) this.fail(key, 'must be a non-empty string')
    return value
  }

  optionalString (key: OptionKey): string | undefined {
    return this.has(key) ? this.string(key) : undefined
  }

  /** An optional password or token: a non-empty string, never shown in a message. */
  optionalSecret (key: OptionKey): string | undefined {
    const value = this.spec[key]
    if (value === undefined) return undefined
    if (typeof value !== 'string' || value.length === 0) this.failSecret(key, 'must be a non-empty string')
    return value
  }

  /** A string that `pattern` matches entirely; `why` says what it must be. */
  matching (key: OptionKey, fallback: string | undefined, pattern: RegExp, why: string): string {
    const value = this.get(key, fallback)
    if (typeof value !== 'string' || !pattern.test(value)) this.fail(key, why, value)
    return value
  }

  optionalMatching (key: OptionKey, pattern: RegExp, why: string): string | undefined {
    return this.has(key) ? this.matching(key, undefined, pattern, why) : undefined
  }

  /** One of `allowed`; the message lists them quoted unless `why` words it otherwise. */
  oneOf<T extends string> (key: OptionKey, fallback: T | undefined, allowed: readonly T[], why = `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`): T {
    const value = this.get(key, fallback)
    if (!(allowed as readonly unknown[]).includes(value)) this.fail(key, why, value)
    return value as T
  }

  /** An HTTP method name, upper-cased. */
  method (key: OptionKey, fallback?: string): string {
    return this.matching(key, fallback, METHOD_NAME, 'must be a method name').toUpperCase()
  }

  /** A non-empty string or a non-empty array of them, as an array; [] when left out. */
  strings (key: OptionKey): string[] {
    const value = this.spec[key]
    if (value === undefined) return []
    const list: unknown[] = Array.isArray(value) ? value : [value]
    if (list.length === 0 || !list.every((v) => typeof v === 'string' && v.length > 0)) {
      this.fail(key, 'must be a non-empty string or an array of them')
    }
    return list as string[]
  }

  /** A target's weight (the rule in validate.ts, shared with the runtime API). */
  weight (key: OptionKey): number {
    return checkWeight(this.pool, this.path(key), this.spec[key])
  }

  /** The object at `key` (or `fallback`), read with the same pool and a longer path. */
  object (key: OptionKey, rules: ObjectRules & { fallback?: Record<string, unknown> } = {}): OptionReader {
    return OptionReader.of(this.pool, this.path(key), this.get(key, rules.fallback), rules)
  }

  /** The array at `key` (or `fallback`), whose items are read by index: 'retry.statuses[2]'. */
  items (key: OptionKey, why: string, fallback?: readonly unknown[]): OptionReader {
    const value = this.get(key, fallback)
    if (!Array.isArray(value)) this.fail(key, why, value)
    return new OptionReader(this.pool, this.path(key), value as unknown as Record<string, unknown>)
  }

  /**
   * A value or an array of them, each read by `read` from the reader and key
   * that name it: 'affinity.secret' alone, 'affinity.secret[1]' in an array.
   */
  oneOrMany<T> (key: OptionKey, read: (at: OptionReader, key: OptionKey) => T): T[] {
    if (!Array.isArray(this.spec[key])) return [read(this, key)]
    const list = this.items(key, '')
    return list.map((i) => read(list, i))
  }

  /** The items of an array reader, each read by `read`. */
  map<T> (read: (index: number) => T): T[] {
    return this.keys().map((i) => read(i as number))
  }
}
