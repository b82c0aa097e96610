import { test } from 'tap'
import { Ring } from '../../../lib/observability/ring'

test('a ring holds what was pushed, oldest first, until it is full', async (t) => {
  const ring = new Ring(5)
  t.same(ring.toArray(), [], 'empty at first')
  ring.push(1)
  ring.push(2)
  ring.push(3)
  t.equal(ring.size, 3)
  t.same(ring.toArray(), [1, 2, 3])
})

test('past its capacity a ring drops the oldest values and keeps the order', async (t) => {
  const ring = new Ring(5)
  for (let i = 1; i <= 7; i++) ring.push(i)
  t.equal(ring.size, 5, 'the size stops at the capacity')
  t.same(ring.toArray(), [3, 4, 5, 6, 7], 'the two oldest are gone')
  ring.push(8)
  t.same(ring.toArray(), [4, 5, 6, 7, 8])
})

test('after many wraps a ring still holds exactly its last capacity values, in order', async (t) => {
  for (const capacity of [1, 2, 7, 60]) {
    const ring = new Ring(capacity)
    for (let i = 0; i < 1000; i++) {
      ring.push(i)
      const expected = Array.from({ length: Math.min(i + 1, capacity) }, (_v, k) => i + 1 - Math.min(i + 1, capacity) + k)
      if (ring.size !== expected.length || ring.toArray().join() !== expected.join()) {
        t.fail(`capacity ${capacity} after ${i + 1} pushes: ${ring.toArray().join()} instead of ${expected.join()}`)
        return
      }
    }
    t.equal(ring.size, capacity, `capacity ${capacity}: bounded after 1000 pushes`)
    t.equal(ring.toArray()[capacity - 1], 999, 'the newest last')
  }
})

test('NaN, a sample without a value, reads as null', async (t) => {
  const ring = new Ring(3)
  ring.push(1.5)
  ring.push(NaN)
  ring.push(0)
  ring.push(NaN)
  t.same(ring.toArray(), [null, 0, null])
})

test('a ring without room is refused', async (t) => {
  t.throws(() => new Ring(0), RangeError)
  t.throws(() => new Ring(2.5), RangeError)
})
