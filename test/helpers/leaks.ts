import type { Server } from 'node:net'
import type { Test } from 'tap'
import type { Pool } from '../../lib/pool/pool'
import { until } from './gateway'

/** Handle types whose count must come back down once a test has closed what it opened. */
const WATCHED = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'PipeWrap'] as const

export type Resources = Record<(typeof WATCHED)[number], number>

/** The process's active (ref'd) sockets, servers and timers, counted by type. */
export function resources (): Resources {
  const counts: Resources = { TCPSocketWrap: 0, TCPServerWrap: 0, Timeout: 0, PipeWrap: 0 }
  for (const type of process.getActiveResourcesInfo()) {
    if (type in counts) counts[type as keyof Resources]++
  }
  return counts
}

/**
 * Waits until no watched handle type counts more than it did in `before`
 * (sockets close a few ticks after their last use), then asserts it.
 */
export async function assertNoLeak (t: Test, before: Resources, what: string): Promise<void> {
  const over = (): string[] => {
    const now = resources()
    return WATCHED.filter((type) => now[type] > before[type]).map((type) => `${type} ${before[type]} -> ${now[type]}`)
  }
  await until(() => over().length === 0, 5000, `handles back to where they were (${what})`).catch(() => {})
  t.same(over(), [], `no socket, server or timer left behind: ${what}`)
}

/** How many connections a listening server holds open. */
export async function connectionsOf (server: Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => { if (err !== null) reject(err); else resolve(n) }))
}

/** Waits until a server holds no connection. */
export async function untilNoConnections (server: Server, what: string): Promise<void> {
  const end = Date.now() + 5000
  while (await connectionsOf(server) > 0) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} to hold no connection`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Waits until the pool and every one of its targets have nothing in flight, and asserts it. */
export async function assertIdle (t: Test, pool: Pool, what: string): Promise<void> {
  await until(() => pool.inFlight === 0 && pool.targets.every((x) => x.inFlight === 0), 5000, `${pool.name} idle`).catch(() => {})
  t.same({ pool: pool.inFlight, targets: pool.targets.map((x) => x.inFlight), retries: pool.activeRetries },
    { pool: 0, targets: pool.targets.map(() => 0), retries: 0 }, `nothing left in flight: ${what}`)
}
