import { test } from 'tap'
import { IndexHeap } from '../../lib/balancers/heap'
import { Draw } from '../../lib/balancers/draw'
import { seeded } from './fixtures'

test('the top is always the least (primary, secondary), through random changes', async (t) => {
  const random = seeded(21)
  for (const size of [1, 2, 5, 17, 300]) {
    const heap = new IndexHeap(size)
    // Few distinct primaries, so ties on the secondary key are common.
    const primary = Array.from({ length: size }, () => Math.floor(random() * 4))
    const secondary = Array.from({ length: size }, () => Math.floor(random() * 1000))
    primary.forEach((p, i) => {
      heap.keys[2 * i] = p
      heap.keys[2 * i + 1] = secondary[i]
    })
    heap.build()
    let wrong = 0
    for (let step = 0; step < 2000; step++) {
      const item = Math.floor(random() * size)
      primary[item] = Math.floor(random() * 4)
      secondary[item] = Math.floor(random() * 1000)
      heap.keys[heap.keyOf(item)] = primary[item]
      heap.keys[heap.keyOf(item) + 1] = secondary[item]
      heap.changed(item)
      const best = primary.reduce((b, p, i) => (p < primary[b] || (p === primary[b] && secondary[i] < secondary[b]) ? i : b), 0)
      const top = heap.top()
      if (primary[top] !== primary[best] || secondary[top] !== secondary[best]) wrong++
      if (heap.keys[0] !== primary[top] || heap.keys[1] !== secondary[top]) wrong++
    }
    t.equal(wrong, 0, `size ${size}`)
  }
})

test('draws stay in [0, n), from the built-in generator or a given one', async (t) => {
  const draw = new Draw()
  const seen = new Set<number>()
  let outside = 0
  for (let i = 0; i < 10_000; i++) {
    const x = draw.below(7)
    if (!Number.isInteger(x) || x < 0 || x >= 7) outside++
    seen.add(x)
  }
  t.equal(outside, 0)
  t.equal(seen.size, 7)
  t.equal(new Draw(() => 0.999999).below(3), 2)
  t.equal(new Draw(() => 1).below(3), 2, 'a source that returns 1 still stays below n')
})
