import type { MonitorState } from '../health/monitor'

/** Marks the plugin's messages among the others a worker and the primary exchange. */
export const CHANNEL = 'fastify-lb'

/** An ejection in force: the same in every worker (docs/cluster.md). */
export interface SharedEjection {
  pool: string
  target: string
  /** Epoch ms. */
  until: number
  /** Ejections in a row, which the next one's length grows with. */
  count: number
}

/** What a worker gathers from every worker through the primary: their metrics, or their status reports. */
export type GatherKind = 'metrics' | 'status'

/** One worker's answer to a gathering. */
export interface Gathered {
  worker: number
  pid: number
  data: unknown
}

/** Messages from a worker to the primary. */
export type WorkerMessage =
  /** `worker` and `pid` name the worker to a hub that is not its node:cluster primary. */
  | { channel: typeof CHANNEL, kind: 'hello', worker?: number, pid?: number }
  /** The state a check of the checking worker left a monitor in. */
  | { channel: typeof CHANNEL, kind: 'health', key: string, state: MonitorState }
  | { channel: typeof CHANNEL, kind: 'eject', ejection: SharedEjection }
  /** Asks for every worker's data; answered by 'gathered' with the same id. */
  | { channel: typeof CHANNEL, kind: 'gather', id: number, what: GatherKind }
  /** A worker's answer to 'collect'. */
  | { channel: typeof CHANNEL, kind: 'collected', id: number, data: unknown }

/** Messages from the primary to a worker. */
export type PrimaryMessage =
  /** The machine's state now, for a worker that joins; `checking` when it is to run the checks. */
  | { channel: typeof CHANNEL, kind: 'welcome', checking: boolean, health: Array<[string, MonitorState]>, ejections: SharedEjection[] }
  /** The worker that ran the checks is gone: this one runs them from now on. */
  | { channel: typeof CHANNEL, kind: 'lead' }
  | { channel: typeof CHANNEL, kind: 'health', key: string, state: MonitorState }
  | { channel: typeof CHANNEL, kind: 'eject', ejection: SharedEjection }
  | { channel: typeof CHANNEL, kind: 'collect', id: number, what: GatherKind }
  | { channel: typeof CHANNEL, kind: 'gathered', id: number, data: Gathered[] }

/** Whether a message another process sent is one of the plugin's. */
export function isOurs (message: unknown): message is { channel: typeof CHANNEL, kind: string } {
  return typeof message === 'object' && message !== null && (message as { channel?: unknown }).channel === CHANNEL
}
