import type { Target } from '../pool/target'
import type { Balancer, BalancerOptions } from './balancer'
import { IndexHeap } from './heap'

/**
 * Writes the target's load as the heap key of `item`. Two stores rather than
 * one of `w > 0 ? x / w : Infinity`: V8 joins such a ternary into a boxed
 * number, which would allocate on every load change.
 */
function storeLoad (heap: IndexHeap, item: number, target: Target): void {
  const key = heap.keyOf(item)
  // A zero weight would give NaN for an idle target and break the heap order.
  if (target.effectiveWeight > 0) heap.keys[key] = target.inFlight / target.effectiveWeight
  else heap.keys[key] = Infinity
}

/**
 * Fewest in-flight requests per unit of weight, from a heap keyed by
 * (load, sequence of the last pick): among equally loaded targets the one
 * picked longest ago wins, so idle equal targets take turns.
 *
 * It owns target.lbSlot (the target's index here), through which
 * loadChanged() finds the target in O(1).
 */
class LeastConnections implements Balancer {
  private targets: readonly Target[] = []
  private heap = new IndexHeap(0)
  private sequence = 0

  update (targets: readonly Target[]): void {
    const n = targets.length
    const heap = new IndexHeap(n)
    // A target that stays finds its old place through lbSlot, without a Map of
    // the old set: a pool of tens of thousands rebuilds on every membership step.
    for (let i = 0; i < n; i++) {
      const target = targets[i]
      storeLoad(heap, i, target)
      // Newcomers go before every target already picked, in pool order.
      heap.keys[2 * i + 1] = this.owns(target) ? this.heap.keys[this.heap.keyOf(target.lbSlot) + 1] : i - n
    }
    for (const old of this.targets) {
      if (this.owns(old)) old.lbSlot = -1
    }
    for (let i = 0; i < n; i++) targets[i].lbSlot = i
    heap.build()
    this.targets = targets
    this.heap = heap
  }

  pick (): Target | undefined {
    if (this.targets.length === 0) return undefined
    const heap = this.heap
    const i = heap.top()
    heap.keys[1] = ++this.sequence
    heap.changed(i)
    return this.targets[i]
  }

  loadChanged (target: Target): void {
    // A target that left the eligible set still finishes its requests.
    if (!this.owns(target)) return
    storeLoad(this.heap, target.lbSlot, target)
    this.heap.changed(target.lbSlot)
  }

  private owns (target: Target): boolean {
    const i = target.lbSlot
    return i >= 0 && i < this.targets.length && this.targets[i] === target
  }
}

/** Least in-flight requests per effectiveWeight, ties rotating. */
export function leastConnections (_options: BalancerOptions = {}): Balancer {
  return new LeastConnections()
}
