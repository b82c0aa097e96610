import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { startUpstreams, type DemoUpstream } from '../../helpers/demo-upstream'
import type { LbOptions, PoolOptions } from '../../../lib/options/resolve'
import { serve } from '../../affinity/fixtures'
import type { Client, Gateway } from '../../helpers/gateway'
import { sampleValue } from '../../helpers/prom-text'

export interface Observed {
  ups: DemoUpstream[]
  gw: Gateway
  client: Client
  /** Scrapes the gateway's /metrics. */
  scrape: () => Promise<string>
}

/**
 * Upstreams named by ids behind a real gateway whose pool `main` targets them
 * (ids as target ids, round robin unless told otherwise) beside any pools of
 * `options`; routes as `routes` adds them, by default `/*` to `main`. All
 * stopped when the test ends.
 */
export async function observed (
  t: Test,
  ids: string[],
  pool: Omit<PoolOptions, 'targets'> = {},
  options: LbOptions = {},
  routes?: (app: FastifyInstance) => void
): Promise<Observed> {
  const ups = await startUpstreams(ids)
  const main: PoolOptions = { algorithm: 'round-robin', ...pool, targets: ups.map((u) => ({ url: u.url, id: u.id })) }
  const { gw, client } = await serve(t, ups, { ...options, pools: { main, ...options.pools } }, routes)
  const scrape = async (): Promise<string> => {
    const res = await client.send(gw.url + '/metrics')
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
    return res.text
  }
  return { ups, gw, client, scrape }
}

/** A counter or gauge of pool `main`'s target `target` (more labels in `labels`). */
export function ofTarget (text: string, name: string, target: string, labels: Record<string, string> = {}): number | undefined {
  return sampleValue(text, name, { pool: 'main', target, ...labels })
}
