/** One pending call at a time: setting it again replaces the previous one. Never keeps the process alive. */
export class Timer {
  private handle: NodeJS.Timeout | null = null
  private readonly fn: () => void

  constructor (fn: () => void) {
    this.fn = fn
  }

  set (ms: number): void {
    this.clear()
    this.handle = setTimeout(() => {
      this.handle = null
      this.fn()
    }, ms)
    this.handle.unref()
  }

  clear (): void {
    if (this.handle !== null) clearTimeout(this.handle)
    this.handle = null
  }
}

/** Retry delays that double from min to max; reset() after a success. */
export class Backoff {
  private current: number
  private readonly min: number
  private readonly max: number

  constructor (min: number, max: number) {
    this.min = min
    this.max = max
    this.current = min
  }

  next (): number {
    const delay = this.current
    this.current = Math.min(this.current * 2, this.max)
    return delay
  }

  reset (): void {
    this.current = this.min
  }
}
