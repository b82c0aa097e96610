/**
 * npm run bench:pair -- <case A> <case B> [--rounds 5 --seconds 5 --path /large]
 *
 * A/B comparison that holds on a busy machine: both proxies run at the same
 * time, pinned to the same CPU (0), each loaded by its own wrk (both pinned to
 * CPU 1, 64 connections each). The scheduler shares the CPU between them, so
 * whatever else the machine runs slows both alike, and the ratio of their CPU
 * time per request says which one costs more, and by how much. Prints the
 * ratios B / A of each round and their median. `--path /large` loads both with
 * the upstreams' 128 KiB answer (streamed by fastify-lb) instead of the small one.
 */
import { cpus } from 'node:os'
import { findProgram } from '../test/helpers/external'
import { cpuMicros, loadAverage, Processes } from './processes'
import { CASES, DIAGNOSTICS } from './cases'
import { probe, startProxy } from './proxies'
import { startUpstreams, type Upstreams } from './upstreams'
import { runWrk } from './wrk'

function median (values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const option = (flag: string, fallback: number): number => {
    const i = argv.indexOf(flag)
    return i === -1 ? fallback : Number(argv[i + 1])
  }
  const [a, b] = argv.filter((arg, i) => !arg.startsWith('--') && (i === 0 || !argv[i - 1].startsWith('--')))
  if (a === undefined || b === undefined) throw new Error('usage: pair.ts <case A> <case B> [--rounds N --seconds S]')
  const rounds = option('--rounds', 5)
  const seconds = option('--seconds', 5)
  const pathAt = argv.indexOf('--path')
  // The proxies' URLs end in '/'.
  const path = pathAt === -1 ? '' : argv[pathAt + 1].replace(/^\//, '')
  const wrk = findProgram('wrk')
  if (wrk === null) throw new Error('wrk is not installed (Debian: apt-get install wrk)')
  const pinning = cpus().length >= 2 && findProgram('taskset') !== null
  const processes = new Processes()
  let upstreams: Upstreams | null = null
  const cpuRatios: number[] = []
  const rpsRatios: number[] = []
  try {
    upstreams = await startUpstreams(processes, pinning ? 1 : null)
    const urls = upstreams.urls
    const proxies = await Promise.all([a, b].map(async (name) => {
      const proxy = await startProxy(processes, name, urls, pinning ? 0 : null)
      const sticky = [...CASES, ...DIAGNOSTICS].find((c) => c.name === name.replace(/^ref-/, ''))?.sticky === true
      return { ...proxy, headers: await probe(proxy.url, sticky) }
    }))
    const load = async (seconds: number): Promise<Array<{ rps: number, cpu: number }>> => {
      const before = proxies.map((p) => cpuMicros(p.pid) ?? 0)
      const results = await Promise.all(proxies.map(async (p) => await runWrk(processes, { wrk, url: p.url + path, seconds, connections: 64, cpu: pinning ? 1 : null, headers: p.headers })))
      results.forEach((r, i) => { if (r.errors > 0) process.stdout.write(`warning: ${[a, b][i]} answered ${r.errors} requests with an error\n`) })
      return results.map((r, i) => ({ rps: r.rps, cpu: ((cpuMicros(proxies[i].pid) ?? 0) - before[i]) / r.requests }))
    }
    await load(3)
    for (let round = 0; round < rounds; round++) {
      const [ra, rb] = await load(seconds)
      cpuRatios.push(rb.cpu / ra.cpu)
      rpsRatios.push(rb.rps / ra.rps)
      process.stdout.write(`round ${round + 1}: ${a} ${ra.rps.toFixed(0)} req/s ${ra.cpu.toFixed(1)} µs CPU/req | ${b} ${rb.rps.toFixed(0)} req/s ${rb.cpu.toFixed(1)} µs CPU/req | ` +
        `B/A CPU ${(rb.cpu / ra.cpu).toFixed(3)} req/s ${(rb.rps / ra.rps).toFixed(3)} | load ${loadAverage()[0].toFixed(2)}\n`)
    }
  } finally {
    await upstreams?.stop()
    await processes.stopAll()
  }
  process.stdout.write(`median ${b} / ${a}: CPU per request ${median(cpuRatios).toFixed(3)} (${Math.min(...cpuRatios).toFixed(3)}–${Math.max(...cpuRatios).toFixed(3)}), ` +
    `req/s ${median(rpsRatios).toFixed(3)} (${Math.min(...rpsRatios).toFixed(3)}–${Math.max(...rpsRatios).toFixed(3)})\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
