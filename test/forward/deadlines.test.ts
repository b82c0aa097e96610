import t, { test } from 'tap'
import { Deadlines, type Timed } from '../../lib/forward/deadlines'

// The list's timer keeps no process alive (the sockets of the tries it watches do): here, this does.
const hold = setInterval(() => {}, 1000)
t.teardown(() => { clearInterval(hold) })

class Item implements Timed {
  deadline = 0
  prevTimed: Timed | null = null
  nextTimed: Timed | null = null
  timedIn: Deadlines | null = null
  onExpire: () => void = () => {}
  constructor (readonly name: string, readonly expired: string[]) {}
  expire (): void {
    this.expired.push(this.name)
    this.onExpire()
  }
}

test('deadlines expire in the order they were added; removed ones never do', async (t) => {
  const list = new Deadlines(30)
  const expired: string[] = []
  const items = ['a', 'b', 'c', 'd', 'e'].map((n) => new Item(n, expired))
  const last = new Promise<void>((resolve) => { items[3].onExpire = resolve })
  const start = performance.now()
  for (const item of items) list.add(item, start)
  // The head, one in the middle and the tail: each unlinks without disturbing the others; twice is harmless.
  list.remove(items[0])
  list.remove(items[2])
  list.remove(items[4])
  list.remove(items[4])
  await last
  t.same(expired, ['b', 'd'], 'the ones left expire, oldest first')
  t.equal(items[1].prevTimed, null)
  t.equal(items[1].nextTimed, null)
})

test('an item added while others expire (a retry) gets a deadline of its own', async (t) => {
  const list = new Deadlines(20)
  const expired: string[] = []
  const first = new Item('first', expired)
  const retry = new Item('retry', expired)
  const done = new Promise<void>((resolve) => { retry.onExpire = resolve })
  first.onExpire = () => { list.add(retry, performance.now()) }
  list.add(first, performance.now())
  await done
  t.same(expired, ['first', 'retry'])
  t.ok(retry.deadline >= first.deadline + 20, 'the retry\'s deadline runs from when it was added')
})

test('close() stops the timer and lets every item go without expiring it', async (t) => {
  const closed = new Deadlines(20)
  const open = new Deadlines(40)
  const expired: string[] = []
  const items = ['a', 'b'].map((n) => new Item(n, expired))
  const sentinel = new Item('sentinel', expired)
  const done = new Promise<void>((resolve) => { sentinel.onExpire = resolve })
  const start = performance.now()
  for (const item of items) closed.add(item, start)
  // Due after the closed list's items: had its timer survived close(), they would have expired first.
  open.add(sentinel, start)
  closed.close()
  await done
  t.same(expired, ['sentinel'])
  t.same(items.map((i) => [i.prevTimed, i.nextTimed]), [[null, null], [null, null]], 'the items are unlinked')
  closed.close()
  t.pass('closing twice is harmless')
})
