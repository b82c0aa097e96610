import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { findProgram } from '../test/helpers/external'
import { stopChild } from '../test/helpers/servers'

const taskset = findProgram('taskset')

/**
 * Every process the benchmark starts, so that all of them are stopped by
 * their PID at the end: after a normal run, on an error and on Ctrl-C.
 */
export class Processes {
  private readonly children = new Set<ChildProcess>()
  private readonly cleanups: Array<() => Promise<void>> = []
  private stopping: Promise<void> | null = null

  constructor () {
    const interrupted = (signal: NodeJS.Signals): void => {
      process.stderr.write(`\n${signal}: stopping every process the benchmark started\n`)
      this.stopAll().finally(() => process.exit(130))
    }
    process.once('SIGINT', interrupted)
    process.once('SIGTERM', interrupted)
    // Last resort when the parent exits without stopAll() (an uncaught error): no child may outlive it.
    process.once('exit', () => {
      for (const child of this.children) {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          try { process.kill(child.pid, 'SIGKILL') } catch {}
        }
      }
    })
  }

  /**
   * Starts a program pinned to one CPU when taskset is there (taskset execs it,
   * so the PID is the program's own and /proc/<pid>/stat reads its CPU time).
   */
  start (path: string, args: string[], cpu: number | null, env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const argv = cpu !== null && taskset !== null ? [taskset, '-c', String(cpu), path, ...args] : [path, ...args]
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env })
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    return child
  }

  /** The running child with this PID. */
  find (pid: number): ChildProcess | undefined {
    for (const child of this.children) if (child.pid === pid) return child
    return undefined
  }

  /** Stops one child by its PID (SIGTERM, then SIGKILL after 5 s). */
  async stop (child: ChildProcess): Promise<void> {
    await stopChild(child)
    this.children.delete(child)
  }

  /** Work for stopAll() once every child has stopped (removing a temp directory), also after Ctrl-C. */
  atStop (cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup)
  }

  stopAll (): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...this.children].map(async (child) => await this.stop(child)))
      for (const cleanup of this.cleanups.splice(0)) await cleanup().catch(() => {})
    })()
    return this.stopping
  }
}

/** Whether processes can be pinned to a CPU here. */
export const canPin = taskset !== null

/** Moves a running process, every thread of it, to another CPU. */
export async function pin (pid: number, cpu: number): Promise<void> {
  if (taskset === null) return
  await new Promise<void>((resolve, reject) => {
    const child = spawn(taskset, ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
    child.once('error', reject)
    child.once('exit', (code) => { code === 0 ? resolve() : reject(new Error(`taskset -p ${pid} exited with ${String(code)}`)) })
  })
}

/** Everything a child wrote so far, kept for error messages (the last 16 kB). */
export function collectOutput (child: ChildProcess): () => string {
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-16384) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return () => output
}

/** The first line a child prints on stdout that parses as JSON. */
export function firstJsonLine<T> (child: ChildProcess, what: string, timeoutMs: number): Promise<T> {
  const output = collectOutput(child)
  return new Promise<T>((resolve, reject) => {
    let buffered = ''
    const timer = setTimeout(() => fail(new Error(`${what} did not start within ${timeoutMs} ms:\n${output()}`)), timeoutMs)
    const onExit = (code: number | null): void => fail(new Error(`${what} exited with ${String(code)}:\n${output()}`))
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8')
      let nl
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        try {
          const value = JSON.parse(line) as T
          done()
          resolve(value)
          return
        } catch {}
      }
    }
    function done (): void {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
    }
    function fail (err: Error): void {
      done()
      reject(err)
    }
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
  })
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100

/**
 * CPU time a process used so far, every thread of it, in microseconds; null
 * where /proc cannot tell. The scheduler's own count (schedstat, in ns) is exact;
 * utime and stime are sampled at each clock tick, which over a few seconds is
 * off by several percent.
 */
export function cpuMicros (pid: number): number | null {
  try {
    let ns = 0
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0])
    }
    if (Number.isFinite(ns) && ns > 0) return ns / 1000
  } catch {}
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return (utime + stime) * 1e6 / TICKS_PER_SECOND
  } catch {
    return null
  }
}

/** Resident set size of a process in bytes, from /proc/<pid>/status; null where /proc cannot tell. */
export function rssBytes (pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

/** The load averages over 1, 5 and 15 minutes. */
export function loadAverage (): [number, number, number] {
  try {
    const [a, b, c] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number)
    return [a, b, c]
  } catch {
    return [NaN, NaN, NaN]
  }
}
