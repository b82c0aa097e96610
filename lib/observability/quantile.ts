/**
 * The q-quantile of observations counted per bucket (not cumulative; the last
 * count is above every bound), interpolated linearly inside its bucket as
 * Prometheus' histogram_quantile() does, so the page and a PromQL query over
 * the same buckets agree. The lowest bucket starts at 0; a quantile that falls
 * above the last bound is that bound (the histogram knows no more). NaN when
 * nothing was counted.
 */
export function bucketQuantile (q: number, bounds: readonly number[], counts: ArrayLike<number>): number {
  let total = 0
  for (let i = 0; i < counts.length; i++) total += counts[i]
  if (total <= 0) return NaN
  const rank = q * total
  let below = 0
  for (let i = 0; i < bounds.length; i++) {
    const inBucket = counts[i]
    if (inBucket > 0 && below + inBucket >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1]
      return lower + (bounds[i] - lower) * (rank - below) / inBucket
    }
    below += inBucket
  }
  return bounds[bounds.length - 1]
}
