import { test, type Test } from 'tap'
import { bucketQuantile } from '../../../lib/observability/quantile'

const BOUNDS = [0.01, 0.1, 1]

/** Equal up to floating point rounding. */
function near (t: Test, actual: number, expected: number, what?: string): void {
  t.ok(Math.abs(actual - expected) < 1e-12, `${what ?? 'value'}: ${actual} is ${expected}`)
}

test('the p99 falls in the bucket holding the 99th percentile, interpolated inside it', async (t) => {
  // 100 answers, all between 0.1 s and 1 s: the 99th is 99% of the way through that bucket.
  near(t, bucketQuantile(0.99, BOUNDS, [0, 0, 100, 0]), 0.1 + 0.9 * 0.99)
  // 99 fast answers and one slow one: the 99th is the last fast one.
  near(t, bucketQuantile(0.99, BOUNDS, [99, 0, 1, 0]), 0.01)
  // 98 fast, 2 slow: the rank 99 lies halfway into the slow bucket.
  near(t, bucketQuantile(0.99, BOUNDS, [98, 0, 2, 0]), 0.1 + 0.9 * 0.5)
  near(t, bucketQuantile(0.5, BOUNDS, [10, 0, 0, 0]), 0.005, 'the lowest bucket starts at 0')
})

test('above the last bound the p99 is that bound; without answers there is none', async (t) => {
  t.equal(bucketQuantile(0.99, BOUNDS, [0, 0, 0, 5]), 1)
  t.ok(Number.isNaN(bucketQuantile(0.99, BOUNDS, [0, 0, 0, 0])))
})
