import { performance } from 'node:perf_hooks'
import type { Target } from '../pool/target'
import type { Balancer, BalancerOptions } from './balancer'
import { Draw } from './draw'

/**
 * Power of two choices over target.score(now): latency EWMA x (in-flight + 1)
 * / weight. Two random candidates rather than the global best, so a fast
 * target is not stampeded, and a slow one is still drawn now and then: its
 * EWMA decays while it gets nothing, until it wins a draw and is measured again.
 */
class P2cEwma implements Balancer {
  private targets: readonly Target[] = []
  private readonly draw: Draw
  private readonly now: () => number

  constructor (options: BalancerOptions) {
    this.draw = new Draw(options.random)
    // The one allocation of a pick: V8 boxes every clock reading in a heap number.
    this.now = options.now ?? (() => performance.now())
  }

  update (targets: readonly Target[]): void {
    this.targets = targets
  }

  pick (): Target | undefined {
    const targets = this.targets
    const n = targets.length
    if (n < 2) return n === 1 ? targets[0] : undefined
    const i = this.draw.below(n)
    let j = this.draw.below(n - 1)
    if (j >= i) j++
    const a = targets[i]
    const b = targets[j]
    const now = this.now()
    return b.score(now) < a.score(now) ? b : a
  }
}

export function p2cEwma (options: BalancerOptions = {}): Balancer {
  return new P2cEwma(options)
}
