/**
 * npm run bench:profile [-- --cases reply-from,lb-round-robin --seconds 10 --top 25]
 *
 * Runs each case's proxy under `node --cpu-prof`, pinned to CPU 0, with wrk
 * (pinned to CPU 1) loading it, and sums the profile's samples taken while wrk
 * measured: self time per function and per package, in µs per request and as a
 * share of the busy time. Writes bench/results/profile.md; the raw profiles stay
 * in bench/results/profiles/ for Chrome DevTools.
 */
import { cpus } from 'node:os'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { findProgram } from '../test/helpers/external'
import { cpuMicros, loadAverage, Processes } from './processes'
import { startProxy } from './proxies'
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

interface Row { name: string, micros: number }

interface Summary {
  name: string
  rps: number
  requests: number
  cpu: number | null
  busyMicros: number
  areas: Row[]
  functions: Row[]
}

/** Self time of the samples taken between from and to (µs on the monotonic clock V8 and process.hrtime share). */
function summarize (profile: CpuProfile, from: number, to: number): { areas: Map<string, number>, functions: Map<string, number>, busy: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const areas = new Map<string, number>()
  const functions = new Map<string, number>()
  let busy = 0
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    // A sample stands for the time until the next one.
    const dt = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0
    if (t < from || t > to) continue
    const node = byId.get(profile.samples[i])
    if (node === undefined) continue
    const frame = node.callFrame
    const a = area(frame)
    areas.set(a, (areas.get(a) ?? 0) + dt)
    if (a === '(idle)') continue
    busy += dt
    const key = `${frame.functionName === '' ? '(anonymous)' : frame.functionName} ${where(frame)}`.trim()
    functions.set(key, (functions.get(key) ?? 0) + dt)
  }
  return { areas, functions, busy }
}

function rows (map: Map<string, number>, requests: number): Row[] {
  return [...map].map(([name, micros]) => ({ name, micros: micros / requests })).sort((a, b) => b.micros - a.micros)
}

function table (summary: Summary, top: number): string {
  const busy = summary.busyMicros
  const lines = [
    `### ${summary.name}: ${summary.rps.toFixed(0)} req/s, ${summary.cpu === null ? '?' : summary.cpu.toFixed(1)} µs CPU/req (process), ${busy.toFixed(1)} µs/req sampled busy`,
    '',
    '| package | self µs/req | share of busy |',
    '| --- | ---: | ---: |'
  ]
  for (const r of summary.areas) {
    if (r.name === '(idle)') continue
    lines.push(`| ${r.name} | ${r.micros.toFixed(2)} | ${(100 * r.micros / busy).toFixed(1)}% |`)
  }
  lines.push('', '| function | self µs/req | share of busy |', '| --- | ---: | ---: |')
  for (const r of summary.functions.slice(0, top)) {
    lines.push(`| \`${r.name.replace(/\|/g, '\\|')}\` | ${r.micros.toFixed(2)} | ${(100 * r.micros / busy).toFixed(1)}% |`)
  }
  return lines.join('\n') + '\n'
}

/** Where the second case spends more (or less) self time than the first, per package and per function. */
function difference (a: Summary, b: Summary, top: number): string {
  const diff = (x: Row[], y: Row[]): Row[] => {
    const m = new Map<string, number>()
    for (const r of y) m.set(r.name, r.micros)
    for (const r of x) m.set(r.name, (m.get(r.name) ?? 0) - r.micros)
    return [...m].map(([name, micros]) => ({ name, micros })).filter((r) => r.name !== '(idle)').sort((p, q) => Math.abs(q.micros) - Math.abs(p.micros))
  }
  const lines = [
    `### ${b.name} minus ${a.name}: ${(b.busyMicros - a.busyMicros).toFixed(2)} µs/req sampled busy, ` +
      `${a.cpu === null || b.cpu === null ? '?' : (b.cpu - a.cpu).toFixed(1)} µs/req process CPU`,
    '',
    '| package | self µs/req |',
    '| --- | ---: |'
  ]
  for (const r of diff(a.areas, b.areas)) lines.push(`| ${r.name} | ${r.micros >= 0 ? '+' : ''}${r.micros.toFixed(2)} |`)
  lines.push('', '| function | self µs/req |', '| --- | ---: |')
  for (const r of diff(a.functions, b.functions).slice(0, top)) {
    lines.push(`| \`${r.name.replace(/\|/g, '\\|')}\` | ${r.micros >= 0 ? '+' : ''}${r.micros.toFixed(2)} |`)
  }
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
      const proxy = await startProxy(processes, name, upstreams.urls, proxyCpu,
        ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', String(INTERVAL_US)])
      const load = { wrk, url: proxy.url, connections: 64, cpu: loadCpu }
      await runWrk(processes, { ...load, seconds: 3 })
      const cpuBefore = cpuMicros(proxy.pid)
      const from = Number(process.hrtime.bigint() / 1000n)
      const result = await runWrk(processes, { ...load, seconds })
      const to = Number(process.hrtime.bigint() / 1000n)
      const cpuAfter = cpuMicros(proxy.pid)
      // SIGTERM: the proxy closes and exits, and node writes the profile on its way out.
      const child = processes.find(proxy.pid)
      if (child !== undefined) await processes.stop(child)
      const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'))
      if (file === undefined) throw new Error(`no profile written for ${name}`)
      const profile = JSON.parse(await readFile(join(profileDir, file), 'utf8')) as CpuProfile
      const s = summarize(profile, from, to)
      summaries.push({
        name,
        rps: result.rps,
        requests: result.requests,
        cpu: cpuBefore === null || cpuAfter === null ? null : (cpuAfter - cpuBefore) / result.requests,
        busyMicros: s.busy / result.requests,
        areas: rows(s.areas, result.requests),
        functions: rows(s.functions, result.requests)
      })
      process.stdout.write(`${name}: ${result.rps.toFixed(0)} req/s, profile ${relative(ROOT, join(profileDir, file))}\n`)
    }
  } finally {
    await upstreams?.stop()
    await processes.stopAll()
  }
  const header = `Profiles of ${new Date().toISOString()}: \`npm run bench:profile -- --cases ${cases.join(',')} --seconds ${seconds}\`, ` +
    `Node ${process.version}, sampling every ${INTERVAL_US} µs, wrk 64 connections for ${seconds} s after a 3 s warm-up, ` +
    `load average (1 min) ${loadBefore.toFixed(2)} before and ${loadAverage()[0].toFixed(2)} after. ` +
    'Self time only counts samples taken while wrk measured.\n\n'
  const text = header + summaries.map((s) => table(s, top)).join('\n') + summaries.slice(1).map((s) => difference(summaries[0], s, top)).join('\n')
  await writeFile(join(__dirname, 'results', 'profile.md'), text)
  process.stdout.write('\n' + text)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
