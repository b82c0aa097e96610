import type { Target } from '../pool/target'
import type { Balancer, BalancerOptions } from './balancer'
import { positions } from './common'
import { IndexHeap } from './heap'

/**
 * Up to this many targets, nginx's own O(n) scan, for its exact sequence; at
 * this size it still costs well under 100 ns. Above it, earliest deadline first.
 */
export const EXACT_MAX_TARGETS = 64

/**
 * nginx smooth weighted round robin, step for step: each pick adds every
 * weight to its current value, takes the largest (the first on ties) and
 * subtracts the total. Weights 5,1,1 give a a b a c a a.
 */
class SmoothWeighted implements Balancer {
  private targets: readonly Target[] = []
  private weights = new Float64Array(0)
  private current = new Float64Array(0)
  private total = 0

  update (targets: readonly Target[]): void {
    const before = positions(this.targets)
    const current = new Float64Array(targets.length)
    this.weights = new Float64Array(targets.length)
    this.total = 0
    for (let i = 0; i < targets.length; i++) {
      const was = before.get(targets[i])
      if (was !== undefined) current[i] = this.current[was]
      this.weights[i] = targets[i].effectiveWeight
      this.total += this.weights[i]
    }
    this.targets = targets
    this.current = current
  }

  pick (): Target | undefined {
    const n = this.targets.length
    if (n === 0) return undefined
    const current = this.current
    const weights = this.weights
    let best = 0
    let bestValue = -Infinity
    for (let i = 0; i < n; i++) {
      const value = current[i] + weights[i]
      current[i] = value
      if (value > bestValue) {
        best = i
        bestValue = value
      }
    }
    current[best] -= this.total
    return this.targets[best]
  }
}

/**
 * Earliest deadline first, as Envoy schedules weighted hosts: a target picked
 * now is due again 1/weight later; ties go to the earlier position. No O(log n)
 * form of nginx's scan exists (its values grow at different rates, so their
 * order keeps changing), but this one gives the same shares and stays smooth:
 * - a target's first deadline is staggered within its first period by its
 *   position, (i + 0.5) / n / weight. Without that, equal weights share one
 *   deadline and come as a batch (a heavy target then runs alone for half its
 *   picks); with it, 65 x 1 and one of 65 alternate as under nginx;
 * - every target has exactly `weight` deadlines in each unit of time, so over
 *   each cycle of W = sum-of-weights picks each gets exactly its weight;
 * - equal weights rotate strictly in pool order.
 * The order can differ from nginx's in places.
 *
 * Targets of equal weight keep their order among themselves for good (each
 * moves on by the same period when picked), so each weight is a queue that
 * rotates, and only the heads of the queues compete, in a heap. A pick is
 * O(log G) for G distinct weights: O(1) with equal weights, and O(log n) at
 * worst, when slow start gives every target a weight of its own.
 */
class EarliestDeadline {
  private targets: readonly Target[] = []
  /** Per target: its next deadline and its period (1 / weight). */
  private deadline = new Float64Array(0)
  private period = new Float64Array(0)
  /** Per group: members sorted by deadline in members[start .. start + size), and the head. */
  private members = new Int32Array(0)
  private start = new Int32Array(0)
  private size = new Int32Array(0)
  private head = new Int32Array(0)
  /** The groups by (deadline, position) of their head. */
  private heap = new IndexHeap(0)

  update (targets: readonly Target[]): void {
    const before = positions(this.targets)
    const n = targets.length
    // Deadlines carry over relative to the next one due, so they stay small.
    const base = this.heap.size > 0 ? this.heap.keys[0] : 0
    const deadline = new Float64Array(n)
    const period = new Float64Array(n)
    const groups = new Map<number, number[]>()
    for (let i = 0; i < n; i++) {
      const w = targets[i].effectiveWeight
      period[i] = w > 0 ? 1 / w : Infinity
      const was = before.get(targets[i])
      // A target that stays keeps its turn, brought forward if its weight rose.
      const due = was === undefined ? (i + 0.5) / n * period[i] : this.deadline[was] - base
      deadline[i] = Math.min(due, period[i])
      const group = groups.get(w)
      if (group === undefined) groups.set(w, [i])
      else group.push(i)
    }
    this.members = new Int32Array(n)
    this.start = new Int32Array(groups.size)
    this.size = new Int32Array(groups.size)
    this.head = new Int32Array(groups.size)
    this.heap = new IndexHeap(groups.size)
    let g = 0
    let at = 0
    for (const group of groups.values()) {
      group.sort((x, y) => deadline[x] - deadline[y] || x - y)
      this.members.set(group, at)
      this.start[g] = at
      this.size[g] = group.length
      this.heap.keys[2 * g] = deadline[group[0]]
      this.heap.keys[2 * g + 1] = group[0]
      at += group.length
      g++
    }
    this.heap.build()
    this.targets = targets
    this.deadline = deadline
    this.period = period
  }

  pick (): Target | undefined {
    if (this.targets.length === 0) return undefined
    const heap = this.heap
    const g = heap.top()
    const start = this.start[g]
    const i = this.members[start + this.head[g]]
    this.deadline[i] += this.period[i]
    const head = this.head[g] + 1 === this.size[g] ? 0 : this.head[g] + 1
    this.head[g] = head
    const next = this.members[start + head]
    heap.keys[0] = this.deadline[next]
    heap.keys[1] = next
    heap.changed(g)
    return this.targets[i]
  }
}

class WeightedRoundRobin implements Balancer {
  private readonly exact = new SmoothWeighted()
  private readonly edf = new EarliestDeadline()
  private active: SmoothWeighted | EarliestDeadline = this.exact

  update (targets: readonly Target[]): void {
    const next = targets.length <= EXACT_MAX_TARGETS ? this.exact : this.edf
    // Crossing the threshold restarts the schedule: the two keep different state.
    if (next !== this.active) this.active.update([])
    this.active = next
    next.update(targets)
  }

  pick (): Target | undefined {
    return this.active.pick()
  }
}

/** Smooth weighted round robin over target.effectiveWeight. */
export function weightedRoundRobin (_options: BalancerOptions = {}): Balancer {
  return new WeightedRoundRobin()
}
