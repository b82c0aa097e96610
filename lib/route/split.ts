import type { FastifyRequest } from 'fastify'
import { invalidOption } from '../errors'
import { UnitDraw } from '../balancers/unit-draw'
import { readCookie } from '../balancers/hash/keys'
import { readHashKey } from '../forward/pick-input'
import type { RequestState } from '../forward/request-state'
import type { Upstream } from '../forward/upstream'
import { OptionReader } from '../options/reader'
import type { HashKeySource } from '../options/resolve'
import { readArms, type ResolvedMatch, type ResolvedSplit, type SplitArm } from './split-options'

/** Seed of a split's key hash: apart from the balancers' and the tiers' own, so arm and target do not correlate. */
const SPLIT_SEED = 0x5e1175

/** A pool a split's requests may go to: an arm, or a pool only a match rule names. */
interface Branch {
  readonly pool: string
  readonly upstream: Upstream
  weight: number
  /** Requests sent to it (lb_split_total). */
  requests: number
}

interface Rule extends ResolvedMatch {
  readonly branch: Branch
}

/** What a split's users read of it: `app.lb.split(route)`. */
export interface SplitView {
  readonly route: string
  /** The arms' weights now, by pool. */
  readonly weights: Record<string, number>
  /** Requests each pool got from this split so far, by pool (match rules' pools included). */
  readonly requests: Record<string, number>
  /** Changes the arms' weights at once; every arm must be named. Throws FST_LB_INVALID_OPTION and changes nothing on a bad value. */
  setWeights (weights: Record<string, number>): void
}

/**
 * A route's traffic split between named pools (nginx's split_clients, Envoy's
 * weighted clusters): match rules first, then a point of [0, 1) per request
 * against the arms' shares. The point comes from the stick key's hash (the
 * same on every replica, no state) or, without one, from an even spread.
 * New weights replace the shares in one assignment between two requests, so
 * no request is dropped or sees half of a change.
 */
export class Split implements SplitView {
  readonly branches: Branch[] = []
  private arms: Branch[] = []
  /** The upper end of each arm's share in [0, 1], over the arms before it too. */
  private upTo: number[] = []
  private readonly rules: Rule[]
  private readonly stick: HashKeySource | 'affinity' | null
  private readonly unit = new UnitDraw(SPLIT_SEED)
  /** Called with the route and the new weights after each change (logs, events). */
  onChange: ((split: Split) => void) | null = null

  constructor (readonly route: string, spec: ResolvedSplit, upstreamOf: (pool: string, field: string) => Upstream) {
    const branchOf = (pool: string, field: string): Branch => {
      let branch = this.branches.find((b) => b.pool === pool)
      if (branch === undefined) {
        branch = { pool, upstream: upstreamOf(pool, field), weight: 0, requests: 0 }
        this.branches.push(branch)
      }
      return branch
    }
    this.arms = spec.arms.map((arm, i) => {
      const branch = branchOf(arm.pool, `config.upstream.split[${i}].pool`)
      branch.weight = arm.weight
      return branch
    })
    this.rules = spec.match.map((m, i) => ({ ...m, branch: branchOf(m.pool, `config.upstream.match[${i}].pool`) }))
    this.stick = spec.stick
    this.upTo = shares(this.arms)
  }

  get weights (): Record<string, number> {
    return Object.fromEntries(this.arms.map((a) => [a.pool, a.weight]))
  }

  get requests (): Record<string, number> {
    return Object.fromEntries(this.branches.map((b) => [b.pool, b.requests]))
  }

  /** The arms with their weights, in the order they were configured. */
  get armList (): SplitArm[] {
    return this.arms.map((a) => ({ pool: a.pool, weight: a.weight }))
  }

  setWeights (weights: Record<string, number>): void {
    const r = OptionReader.of(this.route, 'split', weights, { shape: 'must be an object of weights by pool' })
    const names = this.arms.map((a) => a.pool)
    r.known(names, 'is not an arm of this split')
    for (const name of names) if (!r.has(name)) r.fail(name, 'must be given: every arm needs its weight', undefined)
    const arms = readArms(new OptionReader(this.route, '', { split: names.map((pool) => ({ pool, weight: weights[pool] })) }), 'split')
    // One assignment each: a request picked between them sees either the old shares or the new ones.
    for (let i = 0; i < arms.length; i++) this.arms[i].weight = arms[i].weight
    this.upTo = shares(this.arms)
    this.onChange?.(this)
  }

  /** The pool a request goes to, counted. */
  choose (request: FastifyRequest, state: RequestState): Upstream {
    const branch = this.match(request) ?? this.draw(request, state)
    branch.requests++
    return branch.upstream
  }

  private match (request: FastifyRequest): Branch | undefined {
    const rules = this.rules
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]
      const value = valueOf(rule, request)
      if (value !== undefined && (rule.value === undefined || rule.value === value)) return rule.branch
    }
    return undefined
  }

  private draw (request: FastifyRequest, state: RequestState): Branch {
    const stick = this.stick
    let key: string | undefined
    if (stick === 'affinity') {
      // A valid affinity cookie of an arm's pool keeps the client there; a client without one is spread, and its pool's answer gives it one.
      for (const arm of this.arms) if (arm.weight > 0 && arm.upstream.pool.affinity?.carries(state) === true) return arm
    } else if (stick !== null) {
      key = readHashKey(stick, request, request.ip)
    }
    const u = this.unit.draw(key)
    const upTo = this.upTo
    for (let i = 0; i < upTo.length; i++) if (u < upTo[i]) return this.arms[i]
    return this.arms[this.arms.length - 1]
  }
}

function valueOf (rule: ResolvedMatch, request: FastifyRequest): string | undefined {
  let value: unknown
  if (rule.source === 'header') value = request.headers[rule.name]
  else if (rule.source === 'cookie') value = readCookie(request.headers.cookie, rule.name)
  else value = (request.query as Record<string, unknown> | undefined)?.[rule.name]
  if (Array.isArray(value)) value = value[0]
  return typeof value === 'string' ? value : undefined
}

/** Cumulative shares: an arm of weight 0 gets an empty interval, and the sum over all ends at exactly 1. */
function shares (arms: readonly Branch[]): number[] {
  const total = arms.reduce((sum, a) => sum + a.weight, 0)
  let sum = 0
  return arms.map((a) => (sum += a.weight) / total)
}

/** Refuses a split arm or match naming a pool that does not exist. */
export function unknownSplitPool (route: string, field: string, pool: string): Error {
  return invalidOption(route, field, pool, 'names no pool of the plugin options')
}
