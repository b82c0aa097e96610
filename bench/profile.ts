/**
 * npm run bench:profile [-- --cases reply-from,lb-round-robin --seconds 10 --top 25 --allocations]
 *
 * Runs each case's proxy pinned to CPU 0 with wrk (pinned to CPU 1) loading
 * it, and profiles it while wrk measures (after a 3 s warm-up):
 * - by default under `node --cpu-prof`: self time per function and per
 *   package, in µs per request and as a share of the busy time;
 * - with --allocations, V8's sampling heap profiler (objects that die young
 *   included): bytes allocated per request by function and package. Unlike
 *   time, allocation does not depend on what else the machine is running.
 * Later cases are compared with the first. Writes bench/results/profile.md (or
 * allocations.md; with --path /large, profile-large.md); the raw profiles stay in bench/results/profiles/.
 */
import { cpus } from 'node:os'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { findProgram } from '../test/helpers/external'
import { cpuMicros, firstJsonLine, loadAverage, Processes } from './processes'
import { CASES, DIAGNOSTICS } from './cases'
import { probe, startProxy } from './proxies'
import { startUpstreams, type Upstreams } from './upstreams'
import { runWrk } from './wrk'

const PROXY_CPU = 0
const LOAD_CPU = 1
/** Sampling interval, µs: fine enough for functions of a few µs per request. */
const INTERVAL_US = 200
const ROOT = join(__dirname, '..')

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[], startTime: number, samples: number[], timeDeltas: number[] }
interface HeapNode { callFrame: CallFrame, selfSize: number, children: HeapNode[] }
interface HeapProfile { head: HeapNode }

/** Where a function comes from: the plugin, a package, Node itself, or V8's own entries. */
function area (frame: CallFrame): string {
  const url = frame.url
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : 'native'
  if (url.startsWith('node:')) return 'node core'
  const inModules = url.lastIndexOf('/node_modules/')
  if (inModules !== -1) {
    const rest = url.slice(inModules + '/node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  if (url.includes('/lib/')) return 'fastify-lb'
  if (url.includes('/bench/')) return 'bench app'
  return url
}

function where (frame: CallFrame): string {
  const url = frame.url.startsWith('file://') ? frame.url.slice(7) : frame.url
  const file = url.includes('/node_modules/') ? url.slice(url.lastIndexOf('/node_modules/') + 14) : url.startsWith('/') ? relative(ROOT, url) : url
  return file === '' ? '' : `${file}:${frame.lineNumber + 1}`
}

function functionKey (frame: CallFrame): string {
  return `${frame.functionName === '' ? '(anonymous)' : frame.functionName} ${where(frame)}`.trim()
}

/** What one profile adds up to, per package and per function, in its unit (µs or bytes). */
interface Totals { areas: Map<string, number>, functions: Map<string, number>, busy: number }

function add (totals: Totals, frame: CallFrame, amount: number): void {
  const a = area(frame)
  totals.areas.set(a, (totals.areas.get(a) ?? 0) + amount)
  if (a === '(idle)') return
  totals.busy += amount
  const key = functionKey(frame)
  totals.functions.set(key, (totals.functions.get(key) ?? 0) + amount)
}

/** Self time of the samples taken between from and to (µs on the monotonic clock V8 and process.hrtime share). */
function cpuTotals (profile: CpuProfile, from: number, to: number): Totals {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const totals: Totals = { areas: new Map(), functions: new Map(), busy: 0 }
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    // A sample stands for the time until the next one.
    const dt = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0
    if (t < from || t > to) continue
    const node = byId.get(profile.samples[i])
    if (node !== undefined) add(totals, node.callFrame, dt)
  }
  return totals
}

/** Bytes allocated by each function (its own allocations, not its callees'). */
function heapTotals (profile: HeapProfile): Totals {
  const totals: Totals = { areas: new Map(), functions: new Map(), busy: 0 }
  const stack = [profile.head]
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (node.selfSize > 0) add(totals, node.callFrame, node.selfSize)
    stack.push(...node.children)
  }
  return totals
}

interface Row { name: string, amount: number }

interface Summary {
  name: string
  rps: number
  requests: number
  cpu: number | null
  /** Per request: sampled busy µs, or bytes allocated. */
  busy: number
  areas: Row[]
  functions: Row[]
}

interface Unit { name: string, digits: number, total: string }
const TIME: Unit = { name: 'self µs/req', digits: 2, total: 'µs/req sampled busy' }
const BYTES: Unit = { name: 'bytes/req', digits: 0, total: 'bytes allocated per request' }

function rows (map: Map<string, number>, requests: number): Row[] {
  return [...map].map(([name, amount]) => ({ name, amount: amount / requests })).sort((a, b) => b.amount - a.amount)
}

function code (name: string): string {
  return `\`${name.replace(/\|/g, '\\|')}\``
}

function table (summary: Summary, top: number, unit: Unit): string {
  const busy = summary.busy
  const lines = [
    `### ${summary.name}: ${summary.rps.toFixed(0)} req/s, ${summary.cpu === null ? '?' : summary.cpu.toFixed(1)} µs CPU/req (process), ` +
      `${busy.toFixed(unit.digits)} ${unit.total}`,
    '',
    `| package | ${unit.name} | share |`,
    '| --- | ---: | ---: |'
  ]
  const row = (r: Row, name: string): string => `| ${name} | ${r.amount.toFixed(unit.digits)} | ${(100 * r.amount / busy).toFixed(1)}% |`
  for (const r of summary.areas) if (r.name !== '(idle)') lines.push(row(r, r.name))
  lines.push('', `| function | ${unit.name} | share |`, '| --- | ---: | ---: |')
  for (const r of summary.functions.slice(0, top)) lines.push(row(r, code(r.name)))
  const own = summary.functions.filter((r) => / lib\/\S+:\d+$/.test(r.name))
  if (own.length > 0) {
    lines.push('', `| fastify-lb function | ${unit.name} | share |`, '| --- | ---: | ---: |')
    for (const r of own) lines.push(row(r, code(r.name)))
  }
  return lines.join('\n') + '\n'
}

/** Where the second case spends more (or less) than the first, per package and per function. */
function difference (a: Summary, b: Summary, top: number, unit: Unit): string {
  const diff = (x: Row[], y: Row[]): Row[] => {
    const m = new Map<string, number>()
    for (const r of y) m.set(r.name, r.amount)
    for (const r of x) m.set(r.name, (m.get(r.name) ?? 0) - r.amount)
    return [...m].map(([name, amount]) => ({ name, amount })).filter((r) => r.name !== '(idle)').sort((p, q) => Math.abs(q.amount) - Math.abs(p.amount))
  }
  const signed = (n: number): string => `${n >= 0 ? '+' : ''}${n.toFixed(unit.digits)}`
  const lines = [
    `### ${b.name} minus ${a.name}: ${signed(b.busy - a.busy)} ${unit.total}, ` +
      `${a.cpu === null || b.cpu === null ? '?' : signed(b.cpu - a.cpu)} µs/req process CPU`,
    '',
    `| package | ${unit.name} |`,
    '| --- | ---: |'
  ]
  for (const r of diff(a.areas, b.areas)) lines.push(`| ${r.name} | ${signed(r.amount)} |`)
  lines.push('', `| function | ${unit.name} |`, '| --- | ---: |')
  for (const r of diff(a.functions, b.functions).slice(0, top)) lines.push(`| ${code(r.name)} | ${signed(r.amount)} |`)
  return lines.join('\n') + '\n'
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const option = (flag: string, fallback: string): string => {
    const i = argv.indexOf(flag)
    return i === -1 || argv[i + 1] === undefined ? fallback : argv[i + 1]
  }
  const cases = option('--cases', 'reply-from,lb-round-robin').split(',')
  const seconds = Number(option('--seconds', '10'))
  const top = Number(option('--top', '25'))
  // The proxies' URLs end in '/': `--path /large` profiles the upstreams' 128 KiB (streamed) answer.
  const path = option('--path', '/').replace(/^\//, '')
  const allocations = argv.includes('--allocations')
  const unit = allocations ? BYTES : TIME
  const wrk = findProgram('wrk')
  if (wrk === null) throw new Error('wrk is not installed (Debian: apt-get install wrk)')
  const pinning = cpus().length >= 2 && findProgram('taskset') !== null
  const proxyCpu = pinning ? PROXY_CPU : null
  const loadCpu = pinning ? LOAD_CPU : null
  const dir = join(__dirname, 'results', 'profiles')
  const processes = new Processes()
  let upstreams: Upstreams | null = null
  const summaries: Summary[] = []
  const loadBefore = loadAverage()[0]
  try {
    upstreams = await startUpstreams(processes, loadCpu)
    for (const name of cases) {
      const profileDir = join(dir, name)
      await rm(profileDir, { recursive: true, force: true })
      await mkdir(profileDir, { recursive: true })
      const heapFile = join(profileDir, 'allocations.heapprofile')
      const proxy = allocations
        ? await startProxy(processes, name, upstreams.urls, proxyCpu, [], { ...process.env, BENCH_ALLOCATION_PROFILE: heapFile })
        : await startProxy(processes, name, upstreams.urls, proxyCpu, ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', String(INTERVAL_US)])
      const child = processes.find(proxy.pid)
      if (child === undefined) throw new Error(`proxy ${name} is gone`)
      const sticky = [...CASES, ...DIAGNOSTICS].find((c) => c.name === name)?.sticky === true
      const load = { wrk, url: proxy.url + path, connections: 64, cpu: loadCpu, headers: await probe(proxy.url, sticky) }
      await runWrk(processes, { ...load, seconds: 3 })
      const cpuBefore = cpuMicros(proxy.pid)
      if (allocations) process.kill(proxy.pid, 'SIGUSR2')
      const from = Number(process.hrtime.bigint() / 1000n)
      const result = await runWrk(processes, { ...load, seconds })
      const to = Number(process.hrtime.bigint() / 1000n)
      const cpuAfter = cpuMicros(proxy.pid)
      let totals: Totals
      if (allocations) {
        const written = firstJsonLine<{ written: string }>(child, `allocation profile of ${name}`, 30_000)
        process.kill(proxy.pid, 'SIGUSR2')
        await written
        totals = heapTotals(JSON.parse(await readFile(heapFile, 'utf8')) as HeapProfile)
        await processes.stop(child)
      } else {
        // SIGTERM: the proxy closes and exits, and node writes the profile on its way out.
        await processes.stop(child)
        const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'))
        if (file === undefined) throw new Error(`no profile written for ${name}`)
        totals = cpuTotals(JSON.parse(await readFile(join(profileDir, file), 'utf8')) as CpuProfile, from, to)
      }
      summaries.push({
        name,
        rps: result.rps,
        requests: result.requests,
        cpu: cpuBefore === null || cpuAfter === null ? null : (cpuAfter - cpuBefore) / result.requests,
        busy: totals.busy / result.requests,
        areas: rows(totals.areas, result.requests),
        functions: rows(totals.functions, result.requests)
      })
      process.stdout.write(`${name}: ${result.rps.toFixed(0)} req/s, profile in ${relative(ROOT, profileDir)}\n`)
    }
  } finally {
    await upstreams?.stop()
    await processes.stopAll()
  }
  const what = allocations ? 'Allocation profiles (sampling heap profiler, every 1 kB on average, objects that die young included)' : `CPU profiles (sampling every ${INTERVAL_US} µs)`
  const header = `${what} of ${new Date().toISOString()}: \`npm run bench:profile -- --cases ${cases.join(',')} --seconds ${seconds}${allocations ? ' --allocations' : ''}\`, ` +
    `Node ${process.version}, wrk 64 connections for ${seconds} s after a 3 s warm-up, ` +
    `load average (1 min) ${loadBefore.toFixed(2)} before and ${loadAverage()[0].toFixed(2)} after. ` +
    'Only what happened while wrk measured counts.\n\n'
  const text = header + summaries.map((s) => table(s, top, unit)).join('\n') + '\n' +
    summaries.slice(1).map((s) => difference(summaries[0], s, top, unit)).join('\n')
  const suffix = path === '' ? '' : `-${path.replace(/[^A-Za-z0-9]+/g, '-')}`
  await writeFile(join(__dirname, 'results', `${allocations ? 'allocations' : 'profile'}${suffix}.md`), text)
  process.stdout.write('\n' + text)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
