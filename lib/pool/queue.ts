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
  private readonly list: Deadlines

  constructor (readonly size: number, readonly timeout: number) {
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
}
