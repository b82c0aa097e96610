/**
 * A 4-ary min-heap over the items 0..size-1, ordered by (primary, secondary)
 * and indexed so that an item whose key changed is re-sifted in O(log n).
 *
 * Why this layout: keys sit by heap position, interleaved (primary at 2p,
 * secondary at 2p + 1), so the four siblings a sift compares share one or two
 * cache lines, and four children per node halve a binary heap's depth. Callers
 * write keys straight into `keys` and then call changed(item): a double passed
 * as an argument would be boxed whenever V8 does not inline the call, and picks
 * must not allocate.
 */
export class IndexHeap {
  /** [primary, secondary] by heap position. Before build(), item i sits at position i. */
  readonly keys: Float64Array
  readonly size: number
  /**
   * position -> item, and item -> position. Position `size` is spare: a sift
   * parks the moving item there, so one move() takes it in and out.
   */
  private readonly items: Int32Array
  private readonly pos: Int32Array

  constructor (size: number) {
    this.size = size
    this.keys = new Float64Array(2 * size + 2)
    this.items = new Int32Array(size + 1)
    this.pos = new Int32Array(size)
    for (let i = 0; i < size; i++) {
      this.items[i] = i
      this.pos[i] = i
    }
  }

  /** Orders the heap once the caller has written every item's keys. */
  build (): void {
    for (let p = (this.size - 2) >> 2; p >= 0; p--) this.down(p)
  }

  /** The item with the lowest key, at position 0; the heap must not be empty. */
  top (): number {
    return this.items[0]
  }

  /** Index of the item's primary key in `keys`; its secondary key follows. */
  keyOf (item: number): number {
    return 2 * this.pos[item]
  }

  /** Restores the order after the keys of `item` changed. */
  changed (item: number): void {
    const p = this.pos[item]
    if (p > 0 && this.before(p, (p - 1) >> 2)) this.up(p)
    else this.down(p)
  }

  private before (a: number, b: number): boolean {
    const keys = this.keys
    return keys[2 * a] < keys[2 * b] || (keys[2 * a] === keys[2 * b] && keys[2 * a + 1] < keys[2 * b + 1])
  }

  /** Moves what sits at `from` to `to`. */
  private move (from: number, to: number): void {
    this.keys[2 * to] = this.keys[2 * from]
    this.keys[2 * to + 1] = this.keys[2 * from + 1]
    const item = this.items[from]
    this.items[to] = item
    this.pos[item] = to
  }

  private up (p: number): void {
    const keys = this.keys
    const spare = this.size
    this.move(p, spare)
    const primary = keys[2 * spare]
    const secondary = keys[2 * spare + 1]
    while (p > 0) {
      const parent = (p - 1) >> 2
      const pp = keys[2 * parent]
      if (!(primary < pp || (primary === pp && secondary < keys[2 * parent + 1]))) break
      this.move(parent, p)
      p = parent
    }
    this.move(spare, p)
  }

  private down (p: number): void {
    const keys = this.keys
    const size = this.size
    this.move(p, size)
    const primary = keys[2 * size]
    const secondary = keys[2 * size + 1]
    for (;;) {
      const first = 4 * p + 1
      if (first >= size) break
      const end = first + 4 < size ? first + 4 : size
      let best = first
      let bestPrimary = keys[2 * first]
      let bestSecondary = keys[2 * first + 1]
      for (let c = first + 1; c < end; c++) {
        const cp = keys[2 * c]
        if (cp < bestPrimary || (cp === bestPrimary && keys[2 * c + 1] < bestSecondary)) {
          best = c
          bestPrimary = cp
          bestSecondary = keys[2 * c + 1]
        }
      }
      if (!(bestPrimary < primary || (bestPrimary === primary && bestSecondary < secondary))) break
      this.move(best, p)
      p = best
    }
    this.move(size, p)
  }
}
