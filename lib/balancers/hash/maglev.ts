import type { Target } from '../../pool/target'
import { HASH_SLOT, murmur3, murmur3ToSlot } from './murmur3'
import type { Balancer, BalancerOptions, PickContext } from '../balancer'
import { sortById } from '../common'
import { OwnerTable } from './owner-table'

export const DEFAULT_TABLE_SIZE = 65537
const OFFSET_SEED = 0x9e3779b9
const SKIP_SEED = 0x85ebca6b

/** Maglev's table size must be prime for every target's permutation to reach every entry. */
export function isPrime (n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false
  for (let d = 2; d * d <= n; d++) {
    if (n % d === 0) return false
  }
  return true
}

/**
 * Fills a Maglev table (Eisenbud et al., 2016): each target claims entries in
 * the order of its own permutation of the table, taking turns in id order.
 * The weighted turn-taking is Envoy's: a target with a third of the largest
 * weight takes a turn every third round, so entries follow weights; with equal
 * weights each target owns floor(M/N) or ceil(M/N) entries.
 */
export function fillTable (targets: readonly Target[], size: number): Int32Array {
  const n = targets.length
  const table = new Int32Array(size).fill(-1)
  const next = new Int32Array(n)
  const skip = new Int32Array(n)
  const weight = new Float64Array(n)
  const due = new Float64Array(n)
  let maxWeight = 0
  for (let i = 0; i < n; i++) {
    next[i] = murmur3(targets[i].id, OFFSET_SEED) % size
    skip[i] = murmur3(targets[i].id, SKIP_SEED) % (size - 1) + 1
    weight[i] = Math.max(targets[i].effectiveWeight, 0)
    maxWeight = Math.max(maxWeight, weight[i])
  }
  // All weights zero: share equally rather than loop forever.
  if (maxWeight === 0) {
    weight.fill(1)
    maxWeight = 1
  }
  let filled = 0
  for (let round = 1; filled < size; round++) {
    for (let i = 0; i < n && filled < size; i++) {
      if (weight[i] === 0 || round * weight[i] < due[i]) continue
      due[i] += maxWeight
      // A prime size makes every skip a full cycle: an empty entry is always found.
      let c = next[i]
      while (table[c] !== -1) c = (c + skip[i]) % size
      table[c] = i
      next[i] = (c + skip[i]) % size
      filled++
    }
  }
  return table
}

/**
 * Maglev hashing: one table lookup per key, with an even spread and little
 * disruption when targets change. A key whose entry's owner was tried already
 * (or is full, with bounded loads) falls through to the next entries.
 */
class Maglev implements Balancer {
  readonly skipsTried = true
  private readonly size: number
  private readonly balanceFactor: number
  private table = new OwnerTable([], new Int32Array(0), 0)

  constructor (options: BalancerOptions) {
    this.size = options.tableSize ?? DEFAULT_TABLE_SIZE
    this.balanceFactor = options.balanceFactor ?? 0
    if (!isPrime(this.size)) throw new RangeError(`Maglev tableSize must be a prime, got ${this.size}`)
  }

  update (targets: readonly Target[]): void {
    const sorted = sortById(targets)
    const owners = sorted.length === 0 ? new Int32Array(0) : fillTable(sorted, this.size)
    this.table = new OwnerTable(sorted, owners, this.balanceFactor)
  }

  /** Undefined for a request without a key: the pool then uses its fallback algorithm. */
  pick (ctx: PickContext): Target | undefined {
    if (ctx.key === undefined || this.table.targets.length === 0) return undefined
    murmur3ToSlot(ctx.key, 0)
    return this.table.choose(HASH_SLOT[0] % this.size, ctx)
  }
}

export function maglev (options: BalancerOptions = {}): Balancer {
  return new Maglev(options)
}
