/**
 * The last `capacity` values of a series in one fixed Float64Array: pushing
 * past capacity overwrites the oldest, so a series never grows. NaN stands for
 * "no value" (an interval without an answer has no latency).
 */
export class Ring {
  private readonly values: Float64Array
  /** Where the next value goes. */
  private next = 0
  /** How many values it holds, up to capacity. */
  size = 0

  constructor (readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`a ring holds at least one value, not ${capacity}`)
    this.values = new Float64Array(capacity)
  }

  push (value: number): void {
    this.values[this.next] = value
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1
    if (this.size < this.capacity) this.size++
  }

  /** The values held, oldest first; NaN becomes null. */
  toArray (): Array<number | null> {
    const out = new Array<number | null>(this.size)
    let at = this.next - this.size
    if (at < 0) at += this.capacity
    for (let i = 0; i < this.size; i++) {
      const v = this.values[at]
      out[i] = Number.isNaN(v) ? null : v
      at = at + 1 === this.capacity ? 0 : at + 1
    }
    return out
  }
}
