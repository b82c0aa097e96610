import { OptionReader } from '../options/reader'

/** Values of `result` in `lb_mirror_total`: what became of a request's copy. */
export const MIRROR_RESULTS = ['answered', 'failed', 'timeout', 'skipped'] as const
export type MirrorResult = typeof MIRROR_RESULTS[number]

/** Copies of a pool's requests sent to another pool, fire and forget (nginx's mirror, Envoy's request mirroring). */
export interface MirrorOptions {
  /** The pool the copies go to: a named pool of the plugin options. */
  pool: string
  /** The share of requests copied, 0 to 100 (default 100). */
  percent?: number
  /** ms a copy may take to be answered in whole; then it is cut (default 5000). */
  timeout?: number
  /** Requests with a body larger than this many bytes are not copied (default 1 MiB). */
  maxBody?: number
  /** The header that marks a copy, with the value `1` (default 'x-mirrored'). */
  header?: string
}

export interface ResolvedMirror {
  pool: string
  percent: number
  timeout: number
  maxBody: number
  header: string
}

const MIRROR_KEYS = new Set(['pool', 'percent', 'timeout', 'maxBody', 'header'])
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

export function resolveMirror (pool: string, value: unknown): ResolvedMirror | null {
  if (value === undefined || value === false) return null
  const r = OptionReader.record(pool, 'mirror', value, MIRROR_KEYS, 'mirror', 'must be { pool, percent?, timeout?, maxBody?, header? } or false')
  return {
    pool: r.string('pool'),
    percent: r.number('percent', 100, 0, 100),
    timeout: r.integer('timeout', 5000, 1, 600_000),
    maxBody: r.integer('maxBody', 1024 * 1024, 0, 1024 * 1024 * 1024),
    header: r.matching('header', 'x-mirrored', HEADER_NAME, 'must be a header name').toLowerCase()
  }
}
