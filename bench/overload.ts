/**
 * npm run bench:overload [-- --seconds 5 --capacity 4 --service 100 --steps 1,2,3,4 --client-timeout 5000]
 *
 * Two slow upstreams of fixed capacity (bench/overload-upstream.ts: each
 * serves `capacity` requests at once, `service` ms each, and keeps the rest
 * waiting in its own FIFO) behind two gateways, each in a child process of
 * its own (bench/proxy.ts): (A) the plugin's defaults, no limits; (B)
 * maxConnections = capacity per target and a queue of 4 × capacity requests
 * waiting at most 4 × the service time. An open-loop generator in this process
 * sends requests at a fixed rate, 1×, 2×, 3× and 4× what the two upstreams can
 * serve, for `seconds` per step, whatever the answers do; each request gives up
 * after `client-timeout` ms. A step runs against A, then B, each once the
 * upstreams are idle again. Latency counts from when a request was due, so a
 * generator that falls behind shows it rather than hides it. Prints, and
 * writes to bench/results/overload.md and overload.json, a table per step and
 * a text plot of goodput and p99.
 */
import { cpus } from 'node:os'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Agent, request } from 'undici'
import { overloadCase, type OverloadLimits } from './cases'
import { STATS_PATH, type OverloadUpstreamStats } from './overload-upstream'
import { runMain } from './loopback-servers'
import { firstJsonLine, loadAverage, Processes } from './processes'
import { startProxy } from './proxies'

export interface OverloadSettings {
  /** Seconds of load per step and gateway. */
  seconds: number
  /** Requests each upstream serves at once. */
  capacity: number
  /** Time each request takes an upstream, in ms. */
  service: number
  /** Offered load as multiples of what the upstreams can serve. */
  steps: number[]
  /** Time after which the generator gives up on a request, in ms. */
  clientTimeout: number
}

const DEFAULTS: OverloadSettings = { seconds: 5, capacity: 4, service: 100, steps: [1, 2, 3, 4], clientTimeout: 5000 }
const TARGETS = 2
const WARMUP_SECONDS = 1
const PLOT_WIDTH = 32

function overloadSettings (argv: string[]): OverloadSettings {
  const s: OverloadSettings = { ...DEFAULTS, steps: DEFAULTS.steps.slice() }
  const numeric = { '--seconds': 'seconds', '--capacity': 'capacity', '--service': 'service', '--client-timeout': 'clientTimeout' } as const
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]
    const value = argv[i + 1] ?? ''
    const numbers = value.split(',').map(Number)
    if (value === '' || numbers.some((n) => !(n > 0))) throw new Error(`${flag} needs a positive number, not '${value}'`)
    if (flag === '--steps') s.steps = numbers
    else if (flag in numeric && numbers.length === 1 && Number.isInteger(numbers[0])) s[numeric[flag as keyof typeof numeric]] = numbers[0]
    else throw new Error(`unknown option or bad value: ${flag} ${value}`)
  }
  return s
}

interface Gateway {
  label: string
  limits: OverloadLimits | null
  url: string
}

/** What one gateway did at one step. */
interface StepResult {
  gateway: string
  multiple: number
  offered: number
  sent: number
  ok: number
  /** 2xx answers per second, from the first request due to the last answer. */
  goodput: number
  /** Latency of the 2xx answers, in ms. */
  p50: number
  p99: number
  overloaded: number
  timedOut: number
  failed: number
  /** The most requests at one upstream at once (in service or waiting in its FIFO), the higher of the two. */
  upstreamPeak: number
  /** The most requests in service at one upstream at once: at most its capacity. */
  upstreamPeakInService: number
  /** How late the generator sent its latest request, in ms. */
  maxLag: number
  load: number
}

interface Tally {
  sent: number
  ok: number
  overloaded: number
  timedOut: number
  failed: number
  latencies: number[]
  maxLag: number
  /** From the first request due to the last answer, in ms. */
  span: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** The value at quantile q (nearest rank) of ascending values; NaN when there are none. */
function quantile (sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/**
 * Sends GET requests at `rate` per second for `seconds`, each when it is due
 * whatever the earlier ones did (an open loop), and waits for every answer or
 * timeout. Bounded: rate × seconds requests, each given up after `timeout` ms.
 */
async function openLoop (agent: Agent, url: string, rate: number, seconds: number, timeout: number): Promise<Tally> {
  const tally: Tally = { sent: 0, ok: 0, overloaded: 0, timedOut: 0, failed: 0, latencies: [], maxLag: 0, span: 0 }
  const total = Math.round(rate * seconds)
  const start = performance.now()
  let lastAnswer = start
  const one = async (due: number): Promise<void> => {
    const signal = AbortSignal.timeout(timeout)
    try {
      const res = await request(url, { dispatcher: agent, signal })
      const text = await res.body.text()
      if (res.statusCode >= 200 && res.statusCode < 300) {
        tally.ok++
        tally.latencies.push(performance.now() - due)
      } else if (res.statusCode === 503 && text.includes('FST_LB_OVERLOADED')) {
        tally.overloaded++
      } else {
        tally.failed++
      }
    } catch {
      if (signal.aborted) tally.timedOut++
      else tally.failed++
    }
    lastAnswer = Math.max(lastAnswer, performance.now())
  }
  const pending: Array<Promise<void>> = []
  while (tally.sent < total) {
    const now = performance.now()
    for (let due = start + tally.sent * 1000 / rate; tally.sent < total && due <= now; due = start + tally.sent * 1000 / rate) {
      tally.maxLag = Math.max(tally.maxLag, now - due)
      tally.sent++
      pending.push(one(due))
    }
    if (tally.sent < total) await sleep(Math.max(0, start + tally.sent * 1000 / rate - performance.now()))
  }
  await Promise.all(pending)
  tally.latencies.sort((a, b) => a - b)
  tally.span = lastAnswer - start
  return tally
}

/**
 * Waits until no request is left at any upstream, so that the next run starts
 * from idle. Returns each upstream's peaks since the previous call: each read
 * resets them, so they are the highest over the reads.
 */
async function idleUpstreams (urls: string[]): Promise<Array<Pick<OverloadUpstreamStats, 'peakOpen' | 'peakInService'>>> {
  const peaks = urls.map(() => ({ peakOpen: 0, peakInService: 0 }))
  const deadline = Date.now() + 30_000
  for (;;) {
    const stats = await Promise.all(urls.map(async (url) => {
      const res = await request(url + STATS_PATH)
      return await res.body.json() as OverloadUpstreamStats
    }))
    stats.forEach((s, i) => {
      peaks[i].peakOpen = Math.max(peaks[i].peakOpen, s.peakOpen)
      peaks[i].peakInService = Math.max(peaks[i].peakInService, s.peakInService)
    })
    if (stats.every((s) => s.open === 0)) return peaks
    if (Date.now() > deadline) throw new Error(`the upstreams still hold ${stats.map((s) => s.open).join(' and ')} requests`)
    await sleep(100)
  }
}

async function measure (agent: Agent, gateway: Gateway, upstreams: string[], multiple: number, s: OverloadSettings): Promise<StepResult> {
  const capacity = TARGETS * s.capacity * 1000 / s.service
  await idleUpstreams(upstreams)
  const t = await openLoop(agent, gateway.url, capacity * multiple, s.seconds, s.clientTimeout)
  const stats = await idleUpstreams(upstreams)
  const share = (n: number): number => n / t.sent
  return {
    gateway: gateway.label,
    multiple,
    offered: capacity * multiple,
    sent: t.sent,
    ok: t.ok,
    goodput: t.ok * 1000 / t.span,
    p50: quantile(t.latencies, 0.5),
    p99: quantile(t.latencies, 0.99),
    overloaded: share(t.overloaded),
    timedOut: share(t.timedOut),
    failed: share(t.failed),
    upstreamPeak: Math.max(...stats.map((x) => x.peakOpen)),
    upstreamPeakInService: Math.max(...stats.map((x) => x.peakInService)),
    maxLag: t.maxLag,
    load: loadAverage()[0]
  }
}

const number = (n: number, digits = 0): string => Number.isNaN(n) ? 'n/a' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const percent = (share: number): string => `${(share * 100).toFixed(1)}%`

/** A markdown table of the results, one row per gateway and step. */
function table (results: StepResult[], s: OverloadSettings): string {
  const lines = [
    `| load | gateway | offered req/s | goodput 2xx/s | p50 ms (2xx) | p99 ms (2xx) | 503 | timed out (${s.clientTimeout / 1000} s) | other failures | upstream peak: at once (in service) |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const r of results) {
    lines.push(`| ${r.multiple}× | ${r.gateway} | ${number(r.offered)} | ${number(r.goodput)} | ${number(r.p50)} | ${number(r.p99)} | ` +
      `${percent(r.overloaded)} | ${percent(r.timedOut)} | ${percent(r.failed)} | ${r.upstreamPeak} (${r.upstreamPeakInService}) |`)
  }
  return lines.join('\n') + '\n'
}

function bar (value: number, max: number): string {
  const n = max > 0 && Number.isFinite(value) ? Math.round(value / max * PLOT_WIDTH) : 0
  return '█'.repeat(n) + '·'.repeat(PLOT_WIDTH - n)
}

/** Goodput (a full bar: the upstreams' capacity) and p99 (a full bar: the highest p99) as text bars. */
function plot (results: StepResult[], capacity: number): string {
  const maxGoodput = Math.max(capacity, ...results.map((r) => r.goodput))
  const maxP99 = Math.max(...results.map((r) => Number.isNaN(r.p99) ? 0 : r.p99))
  const width = Math.max(...results.map((r) => r.gateway.length))
  const lines = results.map((r) => `${`${r.multiple}×`.padStart(3)} ${r.gateway.padEnd(width)}  goodput ${bar(r.goodput, maxGoodput)} ${number(r.goodput).padStart(6)}/s` +
    `   p99 ${bar(r.p99, maxP99)} ${number(r.p99).padStart(6)} ms`)
  return `goodput: a full bar is ${number(maxGoodput)} 2xx/s; p99 of the 2xx: a full bar is ${number(maxP99)} ms\n${lines.join('\n')}\n`
}

/** Starts the upstreams and both gateways, runs every step against each, prints and writes the results; stops every process it started. */
export async function runOverload (argv: string[]): Promise<void> {
  const s = overloadSettings(argv)
  const processes = new Processes()
  const agent = new Agent({ keepAliveTimeout: 10_000 })
  const loadBefore = loadAverage()
  try {
    const child = processes.start(process.execPath, ['--require', join(__dirname, 'transpile.js'), join(__dirname, 'overload-upstream.ts'),
      String(TARGETS), String(s.capacity), String(s.service)], null)
    const { ports } = await firstJsonLine<{ ports: number[] }>(child, 'overload upstream', 30_000)
    const upstreams = ports.map((p) => `http://127.0.0.1:${p}`)
    const limits: OverloadLimits = { maxConnections: s.capacity, queue: { size: 4 * s.capacity, timeout: 4 * s.service } }
    const gateways: Gateway[] = await Promise.all([
      { label: 'A: no limits', limits: null },
      { label: `B: maxConnections ${limits.maxConnections}, queue ${limits.queue.size} / ${limits.queue.timeout} ms`, limits }
    ].map(async (g) => ({ ...g, url: (await startProxy(processes, overloadCase(g.limits), upstreams, null)).url })))
    const capacity = TARGETS * s.capacity * 1000 / s.service
    process.stdout.write(`upstreams: ${TARGETS} × ${s.capacity} at once × ${s.service} ms = ${number(capacity)} req/s; ` +
      `${s.seconds} s per step; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}\n`)
    for (const g of gateways) await openLoop(agent, g.url, capacity / 2, WARMUP_SECONDS, s.clientTimeout)
    const results: StepResult[] = []
    for (const multiple of s.steps) {
      for (const g of gateways) {
        const r = await measure(agent, g, upstreams, multiple, s)
        results.push(r)
        process.stdout.write(`${multiple}× ${g.label}: ${r.sent} sent, ${r.ok} 2xx, goodput ${number(r.goodput)}/s, p50 ${number(r.p50)} ms, p99 ${number(r.p99)} ms, ` +
          `503 ${percent(r.overloaded)}, timed out ${percent(r.timedOut)}, other ${percent(r.failed)}, upstream peak ${r.upstreamPeak}, ` +
          `sent up to ${number(r.maxLag, 1)} ms late, load ${r.load.toFixed(2)}\n`)
      }
    }
    const loadAfter = loadAverage()
    const maxLoad = Math.max(loadBefore[0], loadAfter[0], ...results.map((r) => r.load))
    const command = `npm run bench:overload -- --seconds ${s.seconds} --capacity ${s.capacity} --service ${s.service} --steps ${s.steps.join(',')} --client-timeout ${s.clientTimeout}`
    const header = `Run of ${new Date().toISOString()}: \`${command}\`, Node ${process.version}, ${cpus()[0]?.model ?? '?'} × ${cpus().length}. ` +
      `${TARGETS} upstreams of ${s.capacity} requests at once × ${s.service} ms: ${number(capacity)} req/s in all. ` +
      `Load average (1 min) ${loadBefore[0].toFixed(2)} before, at most ${maxLoad.toFixed(2)} during, ${loadAfter[0].toFixed(2)} after. ` +
      `The generator sent requests up to ${number(Math.max(...results.map((r) => r.maxLag)), 1)} ms after they were due.\n\n`
    const perStep = s.steps.map((m) => `### ${m}× capacity\n\n${table(results.filter((r) => r.multiple === m), s)}`).join('\n')
    const text = `${header}${table(results, s)}\n${perStep}\n\`\`\`\n${plot(results, capacity)}\`\`\`\n`
    const dir = join(__dirname, 'results')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'overload.json.tmp'), JSON.stringify({ command, settings: s, limits, load: { before: loadBefore, after: loadAfter, max1m: maxLoad }, results }, null, 2) + '\n')
    await rename(join(dir, 'overload.json.tmp'), join(dir, 'overload.json'))
    await writeFile(join(dir, 'overload.md.tmp'), text)
    await rename(join(dir, 'overload.md.tmp'), join(dir, 'overload.md'))
    process.stdout.write(`\n${text}\nwritten to bench/results/overload.json and bench/results/overload.md\n`)
  } finally {
    await agent.close()
    await processes.stopAll()
  }
}

if (require.main === module) runMain(async () => { await runOverload(process.argv.slice(2)) })
