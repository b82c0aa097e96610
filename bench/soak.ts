/**
 * npm run soak: about a minute of mixed traffic through a gateway process
 * while a script kills, restarts, slows and re-weights its upstreams (each a
 * process of its own), all on loopback. Prints the requests sent, failures by
 * kind, the gateway's memory at start, after warm-up and at the end, and its
 * handles; then closes the gateway, which must exit on its own.
 *
 * SOAK_SECONDS (default 60), SOAK_CONCURRENCY (default 32) and SOAK_SEED
 * (default 1: the same chaos every run) change the run. It exits with 1 when an
 * idempotent request failed, the heap grew more than 10% after warm-up,
 * requests were left in flight, or the gateway did not exit on its own.
 */
import type { ChildProcess } from 'node:child_process'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { collectOutput, firstJsonLine, loadAverage, Processes } from './processes'
import type { SoakStats } from './soak-gateway'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60)
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 32)
const SEED = Number(process.env.SOAK_SEED ?? 1)
const WARM_UP_MS = Math.min(15_000, SECONDS * 250)
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE'])
/**
 * The pools' retry policy: the plugin's defaults unless SOAK_RETRY gives another
 * (JSON), to see how a budget copes with the bursts of resets crashes cause.
 */
const RETRY = JSON.parse(process.env.SOAK_RETRY ?? '{}') as Record<string, number>

/** A small seeded generator (mulberry32), so that a seed replays the same chaos and the same mix. */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const random = seeded(SEED)
const between = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1))
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const mb = (bytes: number): string => (bytes / 1048576).toFixed(1)
const started = Date.now()
const elapsed = (): string => ((Date.now() - started) / 1000).toFixed(1).padStart(5) + ' s'

const processes = new Processes()
const env = { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true' }
const script = (file: string, ...flags: string[]): string[] => [...flags, '--require', 'ts-node/register', join(__dirname, file)]

/** An upstream process: killed with SIGKILL and started again on the same port. */
class Upstream {
  port = 0
  child: ChildProcess | null = null
  slow = false

  constructor (readonly id: string) {}

  get up (): boolean {
    return this.child !== null
  }

  async start (): Promise<void> {
    const child = processes.start(process.execPath, script('soak-upstream.ts'), null, { ...env, SOAK_ID: this.id, SOAK_PORT: String(this.port) })
    this.port = (await firstJsonLine<{ port: number }>(child, `upstream ${this.id}`, 30_000)).port
    this.child = child
    this.slow = false
  }

  kill (): void {
    if (this.child?.pid !== undefined) process.kill(this.child.pid, 'SIGKILL')
    this.child = null
  }

  signal (slow: boolean): void {
    if (this.child?.pid === undefined) return
    process.kill(this.child.pid, slow ? 'SIGUSR1' : 'SIGUSR2')
    this.slow = slow
  }
}

interface Tally {
  sent: number
  ok: number
  /** Requests the load itself abandoned on purpose. */
  abandoned: number
  byMethod: Record<string, number>
  /** Failed requests by method and status or error code. */
  failures: Record<string, number>
  idempotentFailures: number
}

const tally: Tally = { sent: 0, ok: 0, abandoned: 0, byMethod: {}, failures: {}, idempotentFailures: 0 }

function fail (method: string, kind: string): void {
  const key = `${method} ${kind}`
  tally.failures[key] = (tally.failures[key] ?? 0) + 1
  if (IDEMPOTENT.has(method)) tally.idempotentFailures++
}

async function stats (gateway: string): Promise<SoakStats> {
  const res = await request(`${gateway}/soak/stats`)
  return await res.body.json() as SoakStats
}

/** One client: a mix of reads, writes, hashed and sticky requests, and some it gives up on, until the deadline. */
async function client (gateway: string, agent: Agent, until: number, n: number): Promise<void> {
  let cookie = ''
  const user = `user-${n}`
  while (Date.now() < until) {
    const r = random()
    const item = between(1, 5000)
    let method = 'GET'
    let path = `/web/items/${item}`
    const headers: Record<string, string> = {}
    let body: string | undefined
    let abandon = false
    if (r < 0.10) {
      path = `/hash/profile/${item}`
      headers['x-user'] = r < 0.05 ? user : `user-${item}`
    } else if (r < 0.20) {
      path = '/sticky/cart'
      if (cookie !== '') headers.cookie = cookie
    } else if (r < 0.25) {
      method = 'HEAD'
    } else if (r < 0.35) {
      method = 'PUT'
      body = JSON.stringify({ item, n })
    } else if (r < 0.40) {
      method = 'DELETE'
    } else if (r < 0.50) {
      method = 'POST'
      path = '/web/orders'
      body = JSON.stringify({ item, n })
    } else if (r < 0.55) {
      abandon = true
    }
    if (body !== undefined) headers['content-type'] = 'application/json'
    tally.sent++
    tally.byMethod[method] = (tally.byMethod[method] ?? 0) + 1
    const controller = abandon ? new AbortController() : null
    const timer = controller === null ? null : setTimeout(() => controller.abort(), between(0, 40))
    try {
      const res = await request(gateway + path, { dispatcher: agent, method: method as 'GET', headers, body, signal: controller?.signal })
      const set = res.headers['set-cookie']
      if (typeof set === 'string') cookie = set.split(';')[0]
      await res.body.text()
      if (res.statusCode === 200) tally.ok++
      else fail(method, String(res.statusCode))
    } catch (err) {
      if (controller?.signal.aborted === true) tally.abandoned++
      else fail(method, (err as { code?: string }).code ?? (err as Error).name)
    } finally {
      if (timer !== null) clearTimeout(timer)
    }
  }
}

/** Kills, restarts, slows and re-weights upstreams until the deadline; never more than two of four down. */
async function chaos (ups: Upstream[], gateway: string, until: number, actions: Record<string, number>): Promise<void> {
  const log = (what: string): void => {
    actions[what.split(' ')[0]] = (actions[what.split(' ')[0]] ?? 0) + 1
    process.stdout.write(`${elapsed()}  ${what}\n`)
  }
  const pending: Array<Promise<void>> = []
  while (Date.now() < until) {
    await sleep(between(1000, 2500))
    if (Date.now() >= until) break
    const u = ups[between(0, ups.length - 1)]
    const r = random()
    if (r < 0.35 && u.up && ups.filter((x) => !x.up).length < 2) {
      u.kill()
      log(`kill ${u.id} (SIGKILL)`)
      const downMs = between(1500, 5000)
      pending.push(sleep(downMs).then(async () => { await u.start(); log(`restart ${u.id} after ${downMs} ms`) }))
    } else if (r < 0.65 && u.up && !u.slow) {
      u.signal(true)
      log(`slow ${u.id} (150 ms answers)`)
      const slowMs = between(2000, 6000)
      pending.push(sleep(slowMs).then(() => { if (u.up) { u.signal(false); log(`fast ${u.id}`) } }))
    } else {
      const weight = between(1, 5)
      const res = await request(`${gateway}/soak/weight/web/${u.id}/${weight}`, { method: 'POST' })
      await res.body.dump()
      log(`weight ${u.id} = ${weight}`)
    }
  }
  await Promise.all(pending)
}

async function main (): Promise<void> {
  const load1 = loadAverage()
  process.stdout.write(`soak: ${SECONDS} s, ${CONCURRENCY} clients, seed ${SEED}, retry ${JSON.stringify(RETRY)}, ${cpus().length} CPUs, load average ${load1.join(' ')}\n`)
  const ups = ['a', 'b', 'c', 'd'].map((id) => new Upstream(id))
  for (const u of ups) await u.start()
  const gatewayChild = processes.start(process.execPath, script('soak-gateway.ts', '--expose-gc'), null, {
    ...env,
    SOAK_UPSTREAMS: JSON.stringify(ups.map((u) => ({ id: u.id, url: `http://127.0.0.1:${u.port}` }))),
    SOAK_RETRY: JSON.stringify(RETRY)
  })
  const output = collectOutput(gatewayChild)
  const gateway = `http://127.0.0.1:${(await firstJsonLine<{ port: number }>(gatewayChild, 'gateway', 30_000)).port}`
  const exited = new Promise<number | null>((resolve) => gatewayChild.once('exit', (code) => resolve(code)))
  await sleep(1500)
  const atStart = await stats(gateway)

  const agent = new Agent({ connections: 128 })
  const loadStart = Date.now()
  const loadEnd = loadStart + SECONDS * 1000
  const actions: Record<string, number> = {}
  const clients = Array.from({ length: CONCURRENCY }, async (_, n) => client(gateway, agent, loadEnd, n))
  const turmoil = chaos(ups, gateway, loadEnd - 5000, actions)

  await sleep(WARM_UP_MS)
  const afterWarmUp = await stats(gateway)
  const heapSamples: number[] = [afterWarmUp.heapUsed]
  while (Date.now() < loadEnd - 12_000) {
    await sleep(10_000)
    const s = await stats(gateway)
    heapSamples.push(s.heapUsed)
    process.stdout.write(`${elapsed()}  ${tally.sent} requests, ${Object.values(tally.failures).reduce((a, b) => a + b, 0)} failed; gateway heap ${mb(s.heapUsed)} MB, rss ${mb(s.rss)} MB\n`)
  }
  await turmoil
  await sleep(Math.max(0, loadEnd - Date.now() - 1000))
  const atEnd = await stats(gateway)
  heapSamples.push(atEnd.heapUsed)
  await Promise.all(clients)
  const loadSeconds = (Date.now() - loadStart) / 1000
  await agent.close()
  await sleep(1000)
  const idle = await stats(gateway)
  const load2 = loadAverage()

  process.kill(gatewayChild.pid!, 'SIGTERM')
  const guard = setTimeout(() => { if (gatewayChild.exitCode === null) process.kill(gatewayChild.pid!, 'SIGKILL') }, 20_000)
  const closed = await firstJsonLine<{ closedMs: number, handles: Record<string, number> }>(gatewayChild, 'gateway close', 20_000).catch(() => null)
  const exitCode = await exited
  clearTimeout(guard)
  for (const u of ups) u.kill()
  await processes.stopAll()

  const failed = Object.values(tally.failures).reduce((a, b) => a + b, 0)
  const growth = (atEnd.heapUsed - afterWarmUp.heapUsed) / afterWarmUp.heapUsed
  const inFlight = Object.values(idle.pools).reduce((n, p) => n + p.inFlight + p.activeRetries, 0)
  const line = (label: string, s: SoakStats): string =>
    `  ${label.padEnd(22)} rss ${mb(s.rss).padStart(6)} MB   heap ${mb(s.heapUsed).padStart(6)} MB   sockets ${String(s.handles.TCPSocketWrap ?? 0).padStart(4)}   timers ${String(s.handles.Timeout ?? 0).padStart(3)}`
  const out = [
    '',
    `requests       ${tally.sent} in ${loadSeconds.toFixed(0)} s (${(tally.sent / loadSeconds).toFixed(0)}/s): ${Object.entries(tally.byMethod).map(([m, n]) => `${m} ${n}`).join(', ')}`,
    `answered 200   ${tally.ok}; abandoned by the client on purpose ${tally.abandoned}`,
    `failed         ${failed}${failed === 0 ? '' : ': ' + Object.entries(tally.failures).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`).join(', ')}`,
    `idempotent     ${tally.idempotentFailures} failed (GET, HEAD, PUT, DELETE; at least two upstreams were up all along)`,
    `chaos          ${Object.entries(actions).map(([k, n]) => `${k} ${n}`).join(', ')}`,
    'gateway memory (after a full GC) and handles:',
    line('at start', atStart),
    line(`after warm-up (${(WARM_UP_MS / 1000).toFixed(0)} s)`, afterWarmUp),
    line('at the end, under load', atEnd),
    line('idle after the load', idle),
    `heap growth    ${(growth * 100).toFixed(1)}% from warm-up to the end (samples ${heapSamples.map(mb).join(', ')} MB)`,
    `in flight      ${inFlight} once idle; ${idle.connections - 1} client connections open besides the one asking`,
    `close          ${closed === null ? 'no report' : `app.close() took ${closed.closedMs} ms; left: ${JSON.stringify(closed.handles)}`}; the process ${exitCode === 0 ? 'exited on its own (code 0)' : `ended with ${String(exitCode)}`}`,
    `load average   ${load1.join(' ')} at start, ${load2.join(' ')} at the end (${cpus().length} CPUs)`
  ]
  process.stdout.write(out.join('\n') + '\n')
  const ok = tally.idempotentFailures === 0 && growth <= 0.1 && inFlight === 0 && exitCode === 0
  if (!ok) process.stdout.write(`\nsoak: FAILED\n${exitCode === 0 ? '' : output()}`)
  process.exitCode = ok ? 0 : 1
}

// A run that hangs must still end: every process it started is stopped by its PID.
const deadline = setTimeout(() => {
  process.stderr.write('soak: did not finish in time\n')
  processes.stopAll().finally(() => process.exit(1))
}, (SECONDS + 120) * 1000)
deadline.unref()

main().catch(async (err: unknown) => {
  process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n')
  await processes.stopAll()
  process.exitCode = 1
})
