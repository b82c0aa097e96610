import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { delimiter, join } from 'node:path'
import type { Test } from 'tap'

/** Finds an executable on PATH (and in /usr/sbin, /usr/bin, where Debian packages put servers). */
export function findProgram (name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin']
  for (const dir of dirs) {
    if (dir === '') continue
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {}
  }
  return null
}

/**
 * The path of a program an integration test needs. When it is missing the test
 * fails under LB_INTEGRATION=1 (CI installs it) and is skipped, saying why,
 * otherwise; the caller then returns.
 */
export function requireProgram (t: Test, name: string, what: string): string | null {
  const path = findProgram(name)
  if (path !== null) return path
  if (process.env.LB_INTEGRATION === '1') t.fail(`${what} (${name}) is not installed, and LB_INTEGRATION=1 requires it`)
  else {
    const why = `${what} (${name}) is not installed; set LB_INTEGRATION=1 to make this a failure`
    t.pass(why, { skip: why })
  }
  return null
}

/** A loopback port that was free a moment ago, for servers that cannot listen on port 0 and report it. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface Started {
  child: ChildProcess
  /** stdout and stderr so far (the last 64 kB), for failure messages. */
  output: () => string
}

/** Starts a program; the test's teardown stops it by its PID (SIGTERM, then SIGKILL after 5 s). */
export function startProcess (t: Test, path: string, args: string[]): Started {
  const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-65536) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
    process.kill(child.pid, 'SIGTERM')
    const timer = setTimeout(() => { if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL') }, 5000)
    await exited
    clearTimeout(timer)
  })
  return { child, output: () => output }
}

/** Runs a program to its end with `input` on its stdin (and `env`, else this process's); resolves with its exit code and its stdout and stderr together. */
export async function runProgram (path: string, args: string[], options: { cwd?: string, input?: string, env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null, output: string }> {
  const child = spawn(path, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer): void => { output += chunk.toString('utf8') }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const code = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c) => resolve(c))
  })
  child.stdin.end(options.input ?? '')
  return { code: await code, output }
}

/** Polls an async check until it holds; fails after timeoutMs with the last value seen. */
export async function eventually<T> (check: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: T | undefined
  let error: unknown
  for (;;) {
    try {
      last = await check()
      if (ok(last)) return last
    } catch (err) {
      error = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last) ?? String(error)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
