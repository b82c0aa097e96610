import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { collectOutput, type Processes } from './processes'

export interface WrkResult {
  requests: number
  seconds: number
  rps: number
  /** Latency percentiles in microseconds, from `wrk --latency`. */
  p50: number
  p99: number
  /** Socket errors plus answers that were not 2xx or 3xx. */
  errors: number
}

export interface WrkOptions {
  wrk: string
  url: string
  seconds: number
  connections: number
  /** The CPU wrk is pinned to, never the proxy's. */
  cpu: number | null
  headers?: string[]
  /** A Lua script for `wrk -s` (see postScript). */
  script?: string
}

const UNIT_MICROS: Record<string, number> = { us: 1, ms: 1000, s: 1_000_000, m: 60_000_000 }

function micros (value: string, unit: string): number {
  return Number(value) * UNIT_MICROS[unit]
}

/** Reads the figures of wrk's report (wrk 4, with --latency). */
export function parseWrk (text: string): WrkResult {
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text)
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text)
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)/m.exec(text)
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)/m.exec(text)
  if (done === null || rps === null || p50 === null || p99 === null) throw new Error(`unexpected wrk output:\n${text}`)
  let errors = 0
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  if (socket !== null) errors += socket.slice(1).reduce((sum, n) => sum + Number(n), 0)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text)
  if (non2xx !== null) errors += Number(non2xx[1])
  return {
    requests: Number(done[1]),
    seconds: micros(done[2], done[3]) / 1e6,
    rps: Number(rps[1]),
    p50: micros(p50[1], p50[2]),
    p99: micros(p99[1], p99[2]),
    errors
  }
}

/** Runs wrk once (one thread, pinned) and returns its figures. */
export async function runWrk (processes: Processes, options: WrkOptions): Promise<WrkResult> {
  const args = ['-t1', `-c${options.connections}`, `-d${options.seconds}s`, '--latency', '--timeout', '5s']
  for (const h of options.headers ?? []) args.push('-H', h)
  if (options.script !== undefined) args.push('-s', options.script)
  args.push(options.url)
  const child = processes.start(options.wrk, args, options.cpu)
  const output = collectOutput(child)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`wrk exited with ${String(code)}:\n${output()}`)
  return parseWrk(output())
}

/**
 * Writes a wrk script into `dir` that makes every request a POST of `body`
 * with `content-type` (wrk adds the content-length), and returns its path.
 */
export async function postScript (dir: string, body: string, contentType: string): Promise<string> {
  // A Lua long string takes the body as it is; its level is one the body does not close.
  let level = ''
  while (body.includes(`]${level}]`)) level += '='
  const file = join(dir, 'post.lua')
  await writeFile(file, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "${contentType}"\nwrk.body = [${level}[${body}]${level}]\n`)
  return file
}
