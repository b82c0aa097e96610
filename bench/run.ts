/**
 * npm run bench [-- --rounds 3 --seconds 3 --warmup 2 --connections 64 --only lb-round-robin,lb-everything]
 * npm run bench -- --workers 2 [--seconds 5 --connections 64]: the cluster bench instead (bench/cluster.ts, npm run bench:cluster).
 *
 * Starts three loopback upstreams (nginx, or Node when nginx is missing) and
 * the baseline proxy (a plain reply-from proxy), then each other case's proxy
 * in turn, each in a child process pinned to CPU 0; wrk runs pinned to CPU 1.
 * A case's rounds alternate with the baseline's: B c B c B c B. Each figure
 * is divided by the mean of the baseline's just before and just after, since
 * a shared machine drifts by more than the differences measured here within a
 * minute. Then the case's process stops, so that no idle proxy shares CPU 0
 * with the next one. Writes bench/results/latest.json and latest.md.
 * Then, without --only, the overload case with its defaults (bench/overload.ts,
 * npm run bench:overload), which writes bench/results/overload.json and overload.md.
 */
import { cpus } from 'node:os'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { findProgram } from '../test/helpers/external'
import { BASELINE, CASES, DIAGNOSTICS, type CaseInfo } from './cases'
import { runCluster } from './cluster'
import { runOverload } from './overload'
import { cpuMicros, loadAverage, pin, Processes } from './processes'
import { probe, startProxy } from './proxies'
import { between, markdown, summarize, type Round } from './report'
import { startUpstreams, type Upstreams } from './upstreams'
import { runWrk } from './wrk'

const PROXY_CPU = 0
const LOAD_CPU = 1

interface Settings { rounds: number, seconds: number, warmup: number, connections: number, only: string[] | null, workers: number | null }

function settings (argv: string[]): Settings {
  const s: Settings = { rounds: 3, seconds: 3, warmup: 2, connections: 64, only: null, workers: null }
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]]
    if (value === undefined) throw new Error(`${flag} needs a value`)
    if (flag === '--only') s.only = value.split(',')
    else if (flag === '--workers') {
      s.workers = Number(value)
      if (!Number.isInteger(s.workers) || s.workers < 2) throw new Error(`--workers must be an integer of 2 or more, not ${value}`)
    } else if (flag === '--rounds' || flag === '--seconds' || flag === '--warmup' || flag === '--connections') {
      const n = Number(value)
      if (!Number.isInteger(n) || n < (flag === '--warmup' ? 0 : 1)) throw new Error(`${flag} must be a positive integer, not ${value}`)
      s[flag.slice(2) as 'rounds' | 'seconds' | 'warmup' | 'connections'] = n
    } else throw new Error(`unknown option ${flag}`)
  }
  return s
}

interface Running extends CaseInfo {
  url: string
  /** The process whose CPU time counts: the proxy, or nginx for the direct case. */
  pid: number
  headers: string[]
}

function pad (text: string, n: number): string {
  return text.length >= n ? text : text + ' '.repeat(n - text.length)
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const s = settings(args)
  if (s.workers !== null) {
    // The cluster bench keeps its own defaults for what was not given (5 s rounds).
    await runCluster({ seconds: args.includes('--seconds') ? s.seconds : 5, connections: s.connections, workers: s.workers })
    return
  }
  const wrk = findProgram('wrk')
  if (wrk === null) throw new Error('wrk is not installed (Debian: apt-get install wrk)')
  const pinning = cpus().length >= 2 && findProgram('taskset') !== null
  if (!pinning) process.stderr.write('warning: fewer than 2 CPUs or no taskset: the proxy and wrk share CPUs, the figures mean little\n')
  const proxyCpu = pinning ? PROXY_CPU : null
  const loadCpu = pinning ? LOAD_CPU : null
  const cases = [...CASES, ...DIAGNOSTICS].filter((c) => s.only === null ? CASES.includes(c) : c.name === BASELINE || s.only.includes(c.name))
  const processes = new Processes()
  const loadBefore = loadAverage()
  let maxLoad = loadBefore[0]
  let started: Upstreams | null = null
  try {
    const upstreams = started = await startUpstreams(processes, loadCpu)
    process.stdout.write(`upstreams: ${upstreams.kind} on ${upstreams.urls.join(' ')}\n`)

    const start = async (info: CaseInfo): Promise<Running> => {
      if (info.direct === true) return { ...info, url: upstreams.urls[0] + '/', pid: upstreams.pid, headers: await probe(upstreams.urls[0] + '/', false) }
      const { url, pid } = await startProxy(processes, info.name, upstreams.urls, proxyCpu)
      return { ...info, url, pid, headers: await probe(url, info.sticky === true) }
    }
    const stop = async (r: Running): Promise<void> => {
      const child = r.direct === true ? undefined : processes.find(r.pid)
      if (child !== undefined) await processes.stop(child)
    }
    const measure = async (r: Running, seconds: number): Promise<{ wrk: Awaited<ReturnType<typeof runWrk>>, cpu: number | null }> => {
      // The direct case puts nginx on the proxies' CPU: one server on one core, like each proxy.
      if (r.direct === true && proxyCpu !== null) await pin(r.pid, proxyCpu)
      try {
        const before = cpuMicros(r.pid)
        const result = await runWrk(processes, { wrk, url: r.url, seconds, connections: s.connections, cpu: loadCpu, headers: r.headers })
        const after = cpuMicros(r.pid)
        return { wrk: result, cpu: before === null || after === null ? null : (after - before) / result.requests }
      } finally {
        if (r.direct === true && loadCpu !== null) await pin(r.pid, loadCpu)
      }
    }
    const rounds = new Map<string, Round[]>(cases.map((c) => [c.name, []]))
    const once = async (r: Running, round: number): Promise<Round> => {
      const { wrk: w, cpu } = await measure(r, s.seconds)
      const load = loadAverage()[0]
      maxLoad = Math.max(maxLoad, load)
      const result: Round = { round, rps: w.rps, p50: w.p50, p99: w.p99, cpu, requests: w.requests, errors: w.errors, load }
      rounds.get(r.name)?.push(result)
      process.stdout.write(`round ${round + 1}/${s.rounds}  ${pad(r.name, 26)} ${pad(w.rps.toFixed(0), 7)} req/s  p50 ${(w.p50 / 1000).toFixed(2)} ms  ` +
        `p99 ${(w.p99 / 1000).toFixed(2)} ms  ${cpu === null ? '' : `${cpu.toFixed(1)} µs CPU/req`}  errors ${w.errors}  load ${load.toFixed(2)}\n`)
      return result
    }

    const baseInfo = cases.find((c) => c.name === BASELINE)
    if (baseInfo === undefined) throw new Error('no baseline case')
    const base = await start(baseInfo)
    if (s.warmup > 0) await measure(base, s.warmup)
    let before = await once(base, 0)
    for (const info of cases) {
      if (info === baseInfo) continue
      const r = await start(info)
      try {
        if (s.warmup > 0) await measure(r, s.warmup)
        for (let round = 0; round < s.rounds; round++) {
          const result = await once(r, round)
          const after = await once(base, round)
          result.reference = between(before, after)
          before = after
        }
      } finally {
        await stop(r)
      }
    }

    const results = cases.map((c) => summarize(c, rounds.get(c.name) ?? []))
    const loadAfter = loadAverage()
    const report = {
      date: new Date().toISOString(),
      command: `npm run bench -- --rounds ${s.rounds} --seconds ${s.seconds} --warmup ${s.warmup} --connections ${s.connections}` + (s.only === null ? '' : ` --only ${s.only.join(',')}`),
      machine: { node: process.version, cpu: cpus()[0]?.model ?? '?', cpus: cpus().length, pinned: pinning, proxyCpu, loadCpu },
      upstreams: upstreams.kind,
      loadGenerator: 'wrk, 1 thread',
      settings: s,
      load: { before: loadBefore, after: loadAfter, max1m: maxLoad },
      results
    }
    const dir = join(__dirname, 'results')
    await mkdir(dir, { recursive: true })
    const table = markdown(results)
    const header = `Run of ${report.date}: \`${report.command}\`, Node ${process.version}, ${report.machine.cpu} × ${report.machine.cpus}, ` +
      `upstreams ${upstreams.kind}, wrk ${s.connections} connections. Load average (1 min) ${loadBefore[0].toFixed(2)} before, ` +
      `at most ${maxLoad.toFixed(2)} during, ${loadAfter[0].toFixed(2)} after. Median of ${s.rounds} rounds (the baseline: of its ` +
      `${rounds.get(BASELINE)?.length ?? 0} measurements), min–max in parentheses; each ratio is to the mean of the baseline measured just before and just after.\n\n`
    await writeFile(join(dir, 'latest.json.tmp'), JSON.stringify(report, null, 2) + '\n')
    await rename(join(dir, 'latest.json.tmp'), join(dir, 'latest.json'))
    await writeFile(join(dir, 'latest.md.tmp'), header + table)
    await rename(join(dir, 'latest.md.tmp'), join(dir, 'latest.md'))
    process.stdout.write('\n' + header + table + '\nwritten to bench/results/latest.json and bench/results/latest.md\n')
  } finally {
    await started?.stop()
    await processes.stopAll()
  }
  // The overload case (bench/overload.ts) has slow upstreams and gateways of its own, and measures latency, not cost.
  if (s.only === null) await runOverload([])
  else process.stdout.write('\nthe overload case: npm run bench:overload\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
