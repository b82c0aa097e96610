/**
 * npm run bench:pair -- <case A> <case B> [--rounds 5 --seconds 5 --path /large --body 1024]
 *
 * A/B comparison that holds on a busy machine: both proxies run at the same
 * time, pinned to the same CPU (0), each loaded by its own wrk (both pinned to
 * CPU 1, 64 connections each). The scheduler shares the CPU between them, so
 * whatever else the machine runs slows both alike, and the ratio of their CPU
 * time per request says which one costs more, and by how much. Prints the
 * ratios B / A of each round and their median. `--path /large` loads both with
 * the upstreams' 128 KiB answer (streamed by fastify-lb) instead of the small one.
 * `--body <bytes>` makes every request a POST of a JSON document of about that
 * many bytes (`content-type: application/json`); the upstreams answer it as a GET.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { findProgram } from '../test/helpers/external'
import { cpuMicros, loadAverage, Processes } from './processes'
import { CASES, DIAGNOSTICS } from './cases'
import { probe, startProxy } from './proxies'
import { startUpstreams, type Upstreams } from './upstreams'
import { postScript, runWrk } from './wrk'

function median (values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * A JSON document of at least `bytes` bytes, as an API would take: an array of
 * small records of numbers, strings, booleans and a nested array. It is its own
 * JSON.stringify(JSON.parse()): a proxy that parses and serialises it again
 * sends the same bytes.
 */
function jsonBody (bytes: number): string {
  const items: string[] = []
  let length = '{"items":[]}'.length
  for (let i = 0; length < bytes; i++) {
    const item = JSON.stringify({ id: i, name: `item-${i}`, price: i * 1.25, active: i % 2 === 0, tags: ['a', 'b'] })
    length += item.length + (i === 0 ? 0 : 1)
    items.push(item)
  }
  return `{"items":[${items.join(',')}]}`
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
  const bodyBytes = option('--body', 0)
  if (!Number.isInteger(bodyBytes) || bodyBytes < 0) throw new Error('--body takes a number of bytes')
  const wrk = findProgram('wrk')
  if (wrk === null) throw new Error('wrk is not installed (Debian: apt-get install wrk)')
  const pinning = cpus().length >= 2 && findProgram('taskset') !== null
  const processes = new Processes()
  let upstreams: Upstreams | null = null
  const cpuRatios: number[] = []
  const rpsRatios: number[] = []
  const scriptDir = bodyBytes > 0 ? await mkdtemp(join(tmpdir(), 'fastify-lb-pair-')) : null
  try {
    let script: string | undefined
    let body: string | undefined
    if (scriptDir !== null) {
      body = jsonBody(bodyBytes)
      script = await postScript(scriptDir, body, 'application/json')
      process.stdout.write(`POST of a ${body.length}-byte JSON body\n`)
    }
    upstreams = await startUpstreams(processes, pinning ? 1 : null)
    const urls = upstreams.urls
    const proxies = await Promise.all([a, b].map(async (name) => {
      const proxy = await startProxy(processes, name, urls, pinning ? 0 : null)
      const sticky = [...CASES, ...DIAGNOSTICS].find((c) => c.name === name.replace(/^ref2?-/, ''))?.sticky === true
      const headers = await probe(proxy.url, sticky)
      if (body !== undefined) await probePost(proxy.url + path, body, headers)
      return { ...proxy, headers }
    }))
    const load = async (seconds: number): Promise<Array<{ rps: number, cpu: number }>> => {
      const before = proxies.map((p) => cpuMicros(p.pid) ?? 0)
      const results = await Promise.all(proxies.map(async (p) => await runWrk(processes, { wrk, url: p.url + path, seconds, connections: 64, cpu: pinning ? 1 : null, headers: p.headers, script })))
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
    if (scriptDir !== null) await rm(scriptDir, { recursive: true, force: true })
  }
  process.stdout.write(`median ${b} / ${a}: CPU per request ${median(cpuRatios).toFixed(3)} (${Math.min(...cpuRatios).toFixed(3)}–${Math.max(...cpuRatios).toFixed(3)}), ` +
    `req/s ${median(rpsRatios).toFixed(3)} (${Math.min(...rpsRatios).toFixed(3)}–${Math.max(...rpsRatios).toFixed(3)})\n`)
}

/** One POST through a proxy before it is measured: it must be answered 200 like a GET. */
async function probePost (url: string, body: string, headers: string[]): Promise<void> {
  const init: Record<string, string> = { 'content-type': 'application/json' }
  for (const h of headers) init[h.slice(0, h.indexOf(':'))] = h.slice(h.indexOf(':') + 1).trim()
  const res = await fetch(url, { method: 'POST', headers: init, body })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 200)}`)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
