import { Deadlines, type Timed } from '../forward/deadlines'
import type { PickInput } from '../balancers/balancer'
import type { Target } from './target'

/** A request waiting for a slot of its pool: what a pick reads of it, and how it goes on. */
export interface Waiter extends Timed, PickInput {
  /** A slot of `target` was taken for it: the request goes on to that target. */
  admit: (target: Target) => void
}

/**
 * The pool's bounded FIFO queue of requests that found every target full
 * (HAProxy's maxqueue and timeout queue). Every entry waits the same time at
 * most, so the entries expire in the order they came: one list and one timer
 * (the deadline list tries use) hold them all, and joining, leaving and being
 * admitted cost a few pointer writes.
 */
export class WaitQueue {
  /** Requests waiting now. */
  length = 0
  private list: Deadlines
  /**
   * Entries that joined before the timeout changed, each generation in the list
   * of its timeout (so each list keeps its order of deadlines); they come first.
   */
  private earlier: Deadlines[] = []

  constructor (public size: number, public timeout: number) {
    this.list = new Deadlines(timeout)
  }

  /** Adds a request at the end; false when the queue is full. */
  push (waiter: Waiter): boolean {
    if (this.length >= this.size) return false
    this.length++
    this.list.add(waiter, performance.now())
    return true
  }

  /** The request that has waited longest, or null. */
  first (): Waiter | null {
    const earlier = this.earlier
    while (earlier.length > 0) {
      if (!earlier[0].empty) return earlier[0].first() as Waiter
      earlier.shift()
    }
    return this.list.first() as Waiter | null
  }

  /** Takes a request out (admitted, or its client left); false when it was not waiting. */
  remove (waiter: Waiter): boolean {
    if (!this.list.remove(waiter)) return false
    this.length--
    return true
  }

  /** An entry's deadline passed: the list took it out before calling its expire(). */
  expired (): void {
    this.length--
  }

  /**
   * New limits (pool.configure): the size holds for the next request to come
   * (those waiting beyond it keep their place), the timeout for entries that
   * join from now on; those waiting keep the deadline they joined with.
   */
  resize (size: number, timeout: number): void {
    this.size = size
    if (timeout === this.timeout) return
    this.timeout = timeout
    if (!this.list.empty) this.earlier.push(this.list)
    this.list = new Deadlines(timeout)
  }

  /** Every entry, oldest first (a queue being switched off refuses them). */
  * entries (): Generator<Waiter> {
    for (let w = this.first(); w !== null; w = this.first()) {
      this.remove(w)
      yield w
    }
  }
}
