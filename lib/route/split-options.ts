import { OptionReader } from '../options/reader'
import { resolveKeySource, type HashKeySource } from '../options/resolve'
import { isRecord } from '../options/validate'

/** One arm of a split: a named pool of the plugin's options and its share. */
export interface SplitArm {
  pool: string
  /** A share among the arms' weights: an integer from 0 (takes nothing) to 1,000,000. */
  weight: number
}

/** Sends the requests that carry a header, cookie or query value (any value, or `value` exactly) to `pool` first. */
export type SplitMatch = ({ header: string } | { cookie: string } | { query: string }) & { value?: string, pool: string }

/**
 * A route's `config.upstream` that splits its requests between named pools
 * (canary and blue-green releases): `match` rules first, then the weights.
 */
export interface SplitOptions {
  split: SplitArm[]
  match?: SplitMatch[]
  /**
   * What keeps a client on its arm: a key, hashed to a point of the weights (the same on every replica, as nginx's
   * split_clients), or 'affinity': a valid affinity cookie of an arm's pool keeps the client on that arm. Left out,
   * requests are spread by the weights one by one.
   */
  stick?: HashKeySource | 'affinity'
}

export interface ResolvedMatch {
  source: 'header' | 'cookie' | 'query'
  name: string
  value: string | undefined
  pool: string
}

export interface ResolvedSplit {
  arms: SplitArm[]
  match: ResolvedMatch[]
  /** null: spread one by one. */
  stick: HashKeySource | 'affinity' | null
}

const SPLIT_KEYS = new Set(['split', 'match', 'stick'])
const MATCH_SOURCES = ['header', 'cookie', 'query'] as const
export const MAX_SPLIT_WEIGHT = 1_000_000

/** Whether a route's `config.upstream` is a split (rather than a pool name or inline pool options). */
export function isSplit (upstream: unknown): boolean {
  return isRecord(upstream) && 'split' in upstream
}

/** Reads a list of arm weights: every one an integer in range, and at least one above 0. */
export function readArms (r: OptionReader, key: string): SplitArm[] {
  const list = r.items(key, 'must be a non-empty array of { pool, weight }')
  const arms = list.map((i) => {
    const arm = OptionReader.record(r.pool, list.path(i), list.value(i), ['pool', 'weight'], 'split arm')
    return { pool: arm.string('pool'), weight: arm.integer('weight', undefined, 0, MAX_SPLIT_WEIGHT) }
  })
  if (arms.length === 0) r.fail(key, 'must be a non-empty array of { pool, weight }')
  const names = new Set<string>()
  for (const arm of arms) {
    if (names.has(arm.pool)) r.fail(key, `names the pool "${arm.pool}" twice`)
    names.add(arm.pool)
  }
  if (arms.every((a) => a.weight === 0)) r.fail(key, 'must give at least one arm a weight above 0')
  return arms
}

/** Validates a split; `route` names it in errors (FST_LB_INVALID_OPTION for pool "<route>"). */
export function resolveSplit (route: string, input: unknown): ResolvedSplit {
  const r = OptionReader.record(route, 'config.upstream', input, SPLIT_KEYS, 'split')
  const arms = readArms(r, 'split')
  const match = r.has('match')
    ? r.items('match', 'must be an array of { header | cookie | query, value?, pool }').map((i) => readMatch(r.pool, `config.upstream.match[${i}]`, r.value('match') as unknown[], i))
    : []
  let stick: HashKeySource | 'affinity' | null = null
  if (r.value('stick') === 'affinity') stick = 'affinity'
  else if (r.has('stick')) stick = resolveKeySource(r, 'stick')
  return { arms, match, stick }
}

function readMatch (route: string, field: string, list: unknown[], i: number): ResolvedMatch {
  const m = OptionReader.record(route, field, list[i], [...MATCH_SOURCES, 'value', 'pool'], 'split match')
  const sources = MATCH_SOURCES.filter((s) => m.has(s))
  if (sources.length !== 1) m.fail(sources[1] ?? 'header', 'a match names exactly one of header, cookie or query', m.spec)
  const source = sources[0]
  const name = m.string(source)
  return { source, name: source === 'header' ? name.toLowerCase() : name, value: m.optionalString('value'), pool: m.string('pool') }
}
