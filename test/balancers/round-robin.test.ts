import { test } from 'tap'
import { roundRobin } from '../../lib/balancers/round-robin'
import { sequence, weighted } from './fixtures'

test('rotates strictly in pool order, ignoring weights', async (t) => {
  const rr = roundRobin({})
  rr.update(weighted(5, 1, 1))
  t.equal(sequence(rr, 7), 'a b c a b c a')
})

test('an empty set picks nothing, and a refilled one picks again', async (t) => {
  const rr = roundRobin({})
  t.equal(rr.pick({ key: undefined, ip: '', tried: [], poolInFlight: 0 }), undefined)
  const [a, b] = weighted(1, 1)
  rr.update([a, b])
  rr.update([])
  t.equal(sequence(rr, 2), '- -')
  rr.update([a, b])
  t.equal(sequence(rr, 3), 'a b a')
})

test('an update resumes after the last target picked', async (t) => {
  const rr = roundRobin({})
  const [a, b, c, d] = weighted(1, 1, 1, 1)
  rr.update([a, b, c, d])
  t.equal(sequence(rr, 2), 'a b')
  // c became unhealthy: the rotation goes on after b, not back at a.
  rr.update([a, b, d])
  t.equal(sequence(rr, 3), 'd a b')
  // b, the last one picked, left: go on with the next id after it.
  rr.update([a, c, d])
  t.equal(sequence(rr, 3), 'c d a')
})
