/** Something that must be over by its deadline: a try waiting for a connection or for its answer's head. */
export interface Timed {
  /** performance.now() by which it must be over. */
  deadline: number
  prevTimed: Timed | null
  nextTimed: Timed | null
  /** The list it is in: a pool whose timeout changed holds its earlier items in the list they joined. */
  timedIn: Deadlines | null
  /** The deadline passed before it was removed. */
  expire: () => void
}

/**
 * Deadlines that all lie the same time after their start (a pool's try
 * timeout): they expire in the order they were added, so a FIFO list with one
 * timer armed for its head holds them all. Adding and removing cost a few
 * pointer writes and no allocation, where a timer per try would cost an object
 * and a heap insertion each; the timer is re-armed only when it fires.
 */
export class Deadlines {
  private head: Timed | null = null
  private tail: Timed | null = null
  private timer: NodeJS.Timeout | null = null
  /** Items are expiring: one added meanwhile (a retry's try) must not arm a second timer. */
  private firing = false

  constructor (readonly ms: number) {}

  /** Whether nothing waits in the list. */
  get empty (): boolean {
    return this.head === null
  }

  add (item: Timed, now: number): void {
    item.deadline = now + this.ms
    item.timedIn = this
    item.nextTimed = null
    item.prevTimed = this.tail
    if (this.tail === null) this.head = item
    else this.tail.nextTimed = item
    this.tail = item
    if (this.timer === null && !this.firing) this.arm(this.ms)
  }

  /** The item added first of those still in the list. */
  first (): Timed | null {
    return this.head
  }

  /** Takes an item out, from the list it joined; one that is in no list is left alone (false). */
  remove (item: Timed): boolean {
    const list = item.timedIn
    if (list !== this) return list !== null && list.remove(item)
    // timedIn says the item is in this list: every way out (remove, fire, close) clears it.
    const prev = item.prevTimed
    const next = item.nextTimed
    item.timedIn = null
    if (prev === null) this.head = next
    else prev.nextTimed = next
    if (next === null) this.tail = prev
    else next.prevTimed = prev
    item.prevTimed = null
    item.nextTimed = null
    return true
  }

  /** The gateway closed: the timer stops and the items, which nobody waits for any more, are let go. */
  close (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    for (let item = this.head; item !== null; item = this.head) this.remove(item)
  }

  private arm (ms: number): void {
    // A timer of its own keeps no process alive: the sockets of the requests it watches do.
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(ms)))
    this.timer.unref()
  }

  private readonly fire = (): void => {
    this.timer = null
    this.firing = true
    const now = performance.now()
    try {
      for (let item = this.head; item !== null && item.deadline <= now; item = this.head) {
        this.remove(item)
        item.expire()
      }
    } finally {
      this.firing = false
      if (this.head !== null) this.arm(this.head.deadline - now)
    }
  }
}
