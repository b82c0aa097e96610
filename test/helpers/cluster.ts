import cluster, { type Worker } from 'node:cluster'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startUpstreams, type DemoUpstream } from './demo-upstream'
import { clusterPrimary, type ClusterPrimary } from '../../lib/index'

/** What a test worker (test/cluster/fixtures/worker.ts) reports: its id, what happened, and fields by kind. */
export type Report = Record<string, unknown> & { test: string, worker: number }

export interface WorkerState {
  worker: number
  checking: boolean
  /** Checks this worker ran itself, by target id. */
  checks: Record<string, number>
  pools: Array<{ name: string, targets: Array<{ id: string, healthy: boolean, ejectedUntil: number }> }>
}

export interface TestCluster {
  /** Null when the workers run without one (they elect a hub over a socket). */
  primary: ClusterPrimary | null
  /** The shared port of the workers' gateway. */
  url: string
  workers: () => Worker[]
  /** Forks one more worker; resolves once it is listening (and so has joined). */
  fork: () => Promise<Worker>
  /** Kills a worker by its PID and waits for it to exit. */
  kill: (worker: Worker) => Promise<void>
  /** Resolves with the next report (from now on) that `match` accepts. */
  next: (match: (report: Report) => boolean) => Promise<Report>
  state: (worker: Worker) => Promise<WorkerState>
}

/**
 * Makes the test process a node:cluster primary with clusterPrimary() (unless
 * `withPrimary` is false) and `count` gateway workers (test/cluster/fixtures/worker.ts,
 * through ts-node), configured by `env`. Teardown kills every worker it forked
 * by PID and waits for each to exit.
 */
export async function startCluster (t: Test, count: number, env: Record<string, string>, withPrimary = true): Promise<TestCluster> {
  const primary = withPrimary ? clusterPrimary() : null
  cluster.setupPrimary({
    exec: join(__dirname, '..', 'cluster', 'fixtures', 'worker.js'),
    execArgv: ['--require', 'ts-node/register'],
    silent: false
  })
  const forked = new Set<Worker>()
  const watchers = new Set<(report: Report) => void>()
  const onMessage = (_worker: Worker, message: unknown): void => {
    if (typeof message !== 'object' || message === null || typeof (message as { test?: unknown }).test !== 'string') return
    for (const watch of [...watchers]) watch(message as Report)
  }
  cluster.on('message', onMessage)
  const next = async (match: (report: Report) => boolean): Promise<Report> => await new Promise((resolve) => {
    const watch = (report: Report): void => {
      if (!match(report)) return
      watchers.delete(watch)
      resolve(report)
    }
    watchers.add(watch)
  })
  const kill = async (worker: Worker): Promise<void> => {
    forked.delete(worker)
    if (worker.process.exitCode !== null || worker.process.signalCode !== null) return
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    process.kill(worker.process.pid as number, 'SIGKILL')
    await exited
  }
  t.teardown(async () => {
    await Promise.all([...forked].map(kill))
    cluster.off('message', onMessage)
    primary?.close()
  })
  let url = ''
  const fork = async (): Promise<Worker> => {
    const worker = cluster.fork({ TS_NODE_TRANSPILE_ONLY: 'true', ...env })
    forked.add(worker)
    const ready = await Promise.race([
      next((r) => r.test === 'ready' && r.worker === worker.id),
      new Promise<never>((_resolve, reject) => worker.once('exit', (code) => reject(new Error(`worker ${worker.id} exited with ${String(code)}`))))
    ])
    url = `http://127.0.0.1:${String(ready.port)}`
    return worker
  }
  for (let i = 0; i < count; i++) await fork()
  return {
    primary,
    get url () { return url },
    workers: () => [...forked],
    fork,
    kill,
    next,
    async state (worker) {
      const answer = next((r) => r.test === 'state' && r.worker === worker.id)
      worker.send({ test: 'state' })
      return await answer as unknown as WorkerState
    }
  }
}

/**
 * Every worker's report that it ejected `target`, while requests go through
 * the shared port (`send`, one after the other) until each worker has ejected it.
 */
export async function ejectedByTraffic (c: TestCluster, workers: readonly Worker[], target: string, send: () => Promise<unknown>): Promise<Report[]> {
  const ejected = Promise.all(workers.map(async (w) => await c.next((r) => r.test === 'eject' && r.worker === w.id && r.target === target)))
  const done = { now: false }
  const traffic = (async () => { while (!done.now) await send() })()
  const reports = await ejected
  done.now = true
  await traffic
  return reports
}

/**
 * Waits for `rounds` checks of each upstream, then asserts that `checker`
 * ran them all and `follower` none: each upstream received the checks of one
 * worker only. Returns both workers' states.
 */
export async function assertOneChecker (t: Test, c: TestCluster, checker: Worker, follower: Worker, upstreams: readonly DemoUpstream[], rounds = 10): Promise<[WorkerState, WorkerState]> {
  for (let i = 0; i < rounds * upstreams.length; i++) await c.next((r) => r.test === 'check')
  const [s1, s2] = [await c.state(checker), await c.state(follower)]
  t.ok(s1.checking, `worker ${checker.id} checks`)
  t.notOk(s2.checking, `worker ${follower.id} does not`)
  t.same(s2.checks, {}, `worker ${follower.id} sent no check at all`)
  for (const u of upstreams) {
    const ran = s1.checks[u.id]
    // The upstream counts a check when it arrives, the worker when it ends: one may be on its way.
    t.ok(u.healthHits === ran || u.healthHits === ran + 1, `${u.id} received the checks of one worker only (${u.healthHits} received, ${ran} run)`)
  }
  return [s1, s2]
}

/** Demo upstreams on loopback port 0 for a cluster test, stopped at teardown, and the pool targets naming them. */
export async function clusterUpstreams (t: Test, ids = ['a', 'b', 'c']): Promise<{ upstreams: DemoUpstream[], targets: Array<{ url: string, id: string }> }> {
  const upstreams = await startUpstreams(ids)
  t.teardown(async () => { await Promise.all(upstreams.map(async (u) => { await u.stop() })) })
  return { upstreams, targets: upstreams.map((u) => ({ url: u.url, id: u.id })) }
}
