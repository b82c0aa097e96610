import type { Test } from 'tap'

type IntervalFn = (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => NodeJS.Timeout
type ClearFn = (timer: NodeJS.Timeout | string | number | undefined) => void

export interface TimerWatch {
  /** Intervals created from the watched source and not cleared yet. */
  pending: Set<NodeJS.Timeout>
  /** Intervals created from it since the count was last reset. */
  created: number
}

/**
 * Watches the real intervals that code under `source` (a path fragment of the
 * creating stack) sets and clears, until the test ends. The process's resource
 * list does not show unref'd timers, so a leaked one is found here instead.
 */
export function timersFrom (t: Test, source: string): TimerWatch {
  const watch: TimerWatch = { pending: new Set(), created: 0 }
  const g = globalThis as unknown as { setInterval: IntervalFn, clearInterval: ClearFn }
  const { setInterval: realSet, clearInterval: realClear } = g
  g.setInterval = (callback, ms, ...args) => {
    const timer = realSet(callback, ms, ...args)
    if ((new Error().stack ?? '').includes(source)) {
      watch.pending.add(timer)
      watch.created++
    }
    return timer
  }
  g.clearInterval = (timer) => {
    if (typeof timer === 'object') watch.pending.delete(timer)
    realClear(timer)
  }
  t.teardown(() => {
    g.setInterval = realSet
    g.clearInterval = realClear
  })
  return watch
}
