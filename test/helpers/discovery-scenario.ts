import type { Test } from 'tap'
import type { DemoUpstream } from './demo-upstream'
import type { MembershipChange, Pool } from '../../lib/pool/pool'
import type { DiscoveryEvent } from '../../lib/discovery/provider'
import { Client, type Gateway, until } from './gateway'
import { Load } from './load'

/** One upstream as a provider's source lists it. */
export interface Member {
  upstream: DemoUpstream
  weight: number
}

/** Writes a complete list of members to the provider's source (a file, DNS records, Consul, etcd). */
export type Publish = (members: Member[]) => Promise<void>

/** The configured URLs of a pool's members, sorted. */
export function memberUrls (pool: Pool): string[] {
  return pool.targets.map((t) => t.url).sort()
}

export function urlsOf (upstreams: DemoUpstream[]): string[] {
  return upstreams.map((u) => u.url).sort()
}

/** Resolves with the next 'discovery' event of a pool that satisfies `match`. */
export async function nextDiscovery (pool: Pool, match: (e: DiscoveryEvent) => boolean, timeoutMs = 15_000): Promise<DiscoveryEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pool.off('discovery', listener)
      reject(new Error(`no matching discovery event within ${timeoutMs} ms`))
    }, timeoutMs)
    const listener = (e: DiscoveryEvent): void => {
      if (!match(e)) return
      clearTimeout(timer)
      pool.off('discovery', listener)
      resolve(e)
    }
    pool.on('discovery', listener)
  })
}

/** Asserts each upstream's share of the answers, within `tolerance` (absolute). */
function shares (t: Test, counts: Record<string, number>, expected: Record<string, number>, tolerance: number, what: string): void {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  const sum = Object.values(expected).reduce((a, b) => a + b, 0)
  t.same(Object.keys(counts).sort(), Object.keys(expected).sort(), `${what}: served by ${Object.keys(expected).sort().join(', ')}`)
  for (const [id, weight] of Object.entries(expected)) {
    const share = (counts[id] ?? 0) / total
    t.ok(Math.abs(share - weight / sum) <= tolerance, `${what}: ${id} took ${(share * 100).toFixed(1)}% (expected ${(weight / sum * 100).toFixed(1)}% ± ${tolerance * 100}%) of ${total}`)
  }
}

/**
 * The membership scenario every provider goes through, under continuous load
 * through a real gateway whose pool uses 'weighted-round-robin' (so shares are
 * exact up to the few requests in flight at a change): the source lists a and
 * b; then adds c; then (if the provider carries weights) gives a weight 3; then
 * drops b while b has requests in flight. No request may fail, each phase's
 * shares must follow the weights, and b must get nothing once it has left.
 * The gateway must have been started after the source listed a and b.
 */
export async function membershipUnderLoad (
  t: Test,
  gateway: Gateway,
  poolName: string,
  upstreams: [DemoUpstream, DemoUpstream, DemoUpstream],
  publish: Publish,
  options: { weights: boolean, path?: string }
): Promise<void> {
  const [a, b, c] = upstreams
  const pool = gateway.app.lb.pool(poolName)
  t.same(memberUrls(pool), urlsOf([a, b]), 'the gateway is ready with the first list')
  const client = new Client()
  t.teardown(async () => { await client.close() })
  const load = new Load(client, gateway.url + (options.path ?? '/load'))
  try {
    shares(t, await load.run('a, b', 200), { a: 1, b: 1 }, 0.05, 'first list')

    await publish([{ upstream: a, weight: 1 }, { upstream: b, weight: 1 }, { upstream: c, weight: 1 }])
    await until(() => memberUrls(pool).length === 3, 15_000, 'c to join')
    t.same(memberUrls(pool), urlsOf([a, b, c]), 'c joined')
    shares(t, await load.run('a, b, c', 300), { a: 1, b: 1, c: 1 }, 0.05, 'after adding c')

    const aWeight = options.weights ? 3 : 1
    if (options.weights) {
      await publish([{ upstream: a, weight: 3 }, { upstream: b, weight: 1 }, { upstream: c, weight: 1 }])
      await until(() => pool.targets.find((x) => x.url === a.url)?.weight === 3, 15_000, 'a to weigh 3')
      shares(t, await load.run('a x3', 500), { a: 3, b: 1, c: 1 }, 0.05, 'after giving a weight 3')
    }

    // b answers slowly from now on: each loop then spends nearly all its time waiting on b, so b
    // has requests in flight when it starts draining, however long the source takes to publish.
    b.delayMs = 300
    b.mode = 'slow'
    // Requests b took before the switch still answer fast: wait until the loops settled on the slow b.
    await load.run('b slow', 20)
    const bTarget = pool.targets.find((x) => x.url === b.url)
    await until(() => (bTarget?.inFlight ?? 0) >= 2, 5000, 'b to have requests in flight')
    let inFlightAtDrain = -1
    const onChange = (change: MembershipChange): void => {
      const leaving = change.updated.find((x) => x.url === b.url && x.draining)
      if (leaving !== undefined && inFlightAtDrain === -1) inFlightAtDrain = leaving.inFlight
    }
    pool.on('change', onChange)
    await publish([{ upstream: a, weight: aWeight }, { upstream: c, weight: 1 }])
    await until(() => !memberUrls(pool).includes(b.url), 15_000, 'b to drain and leave')
    pool.off('change', onChange)
    t.ok(inFlightAtDrain > 0, `b had requests in flight when it began to drain (${inFlightAtDrain})`)
    const bHits = b.hits
    shares(t, await load.run('a, c', 300), { a: aWeight, c: 1 }, 0.05, 'after removing b')
    t.equal(b.hits, bHits, 'b got no request after it left')
  } finally {
    await load.stop()
  }
  t.same(load.failures, [], `none of ${load.total} requests failed`)
}
