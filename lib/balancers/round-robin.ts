import type { Target } from '../pool/target'
import type { Balancer, BalancerOptions } from './balancer'

class RoundRobin implements Balancer {
  private targets: readonly Target[] = []
  private next = 0
  private last: Target | undefined

  update (targets: readonly Target[]): void {
    this.targets = targets
    // Resume after the last target picked, in the pool's id order, whether or
    // not it stayed: a health flap elsewhere must not send the rotation back to
    // the first target.
    const last = this.last
    const at = last === undefined ? -1 : targets.findIndex((t) => t.id > last.id)
    this.next = at >= 0 ? at : 0
  }

  pick (): Target | undefined {
    const targets = this.targets
    if (targets.length === 0) return undefined
    const target = targets[this.next]
    this.next = this.next + 1 === targets.length ? 0 : this.next + 1
    this.last = target
    return target
  }
}

/** Strict rotation over the eligible targets, in the pool's (id) order. */
export function roundRobin (_options: BalancerOptions = {}): Balancer {
  return new RoundRobin()
}
