import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { requireProgram, runProgram } from './external'

/**
 * PM2's CLI: LB_PM2 when set, else the project's own (a devDependency), else
 * one on PATH. A missing one fails the test under LB_INTEGRATION=1 and skips it otherwise.
 */
export function requirePm2 (t: Test): string | null {
  const own = process.env.LB_PM2 ?? join(__dirname, '..', '..', 'node_modules', '.bin', 'pm2')
  if (existsSync(own)) return own
  return requireProgram(t, 'pm2', 'PM2')
}

export interface Pm2 {
  /** PM2_HOME: a fresh directory, never the user's ~/.pm2. */
  home: string
  /** Runs the CLI with the test's environment; rejects when it fails. */
  run: (args: string[]) => Promise<string>
  /** The daemon's PID, from PM2_HOME/pm2.pid; null before it started. */
  daemonPid: () => Promise<number | null>
  /** `pm2 kill`, then waits for the daemon to be gone (killing it by its PID if it lingers); says whether it went by itself. */
  kill: () => Promise<boolean>
  /** The apps' logs, for failure messages. */
  logs: () => Promise<string>
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Waits up to `ms` for a process to be gone. */
export async function gone (pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (alive(pid)) {
    if (Date.now() > end) return false
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return true
}

/** A PM2 of the test's own (its PM2_HOME in a temporary directory), with `env` passed on to the apps it starts; teardown kills it. */
export async function startPm2 (t: Test, bin: string, env: Record<string, string>): Promise<Pm2> {
  const home = await mkdtemp(join(tmpdir(), 'lb-pm2-'))
  const fullEnv = { ...process.env, ...env, PM2_HOME: home }
  const run = async (args: string[]): Promise<string> => {
    const result = await runProgram(bin, args, { env: fullEnv })
    if (result.code !== 0) throw new Error(`pm2 ${args.join(' ')} exited with ${String(result.code)}: ${result.output}`)
    return result.output
  }
  const daemonPid = async (): Promise<number | null> => {
    try {
      return Number((await readFile(join(home, 'pm2.pid'), 'utf8')).trim())
    } catch {
      return null
    }
  }
  let killed = false
  const kill = async (): Promise<boolean> => {
    killed = true
    const pid = await daemonPid()
    await runProgram(bin, ['kill'], { env: fullEnv })
    if (pid === null || await gone(pid, 5000)) return true
    process.kill(pid, 'SIGKILL')
    await gone(pid, 5000)
    return false
  }
  const logs = async (): Promise<string> => {
    const out = [await readFile(join(home, 'pm2.log'), 'utf8').catch(() => '')]
    const dir = join(home, 'logs')
    for (const file of await readdir(dir).catch(() => [])) {
      out.push(`--- ${file}\n` + await readFile(join(dir, file), 'utf8').catch(() => ''))
    }
    return out.join('\n').slice(-20_000)
  }
  t.teardown(async () => {
    if (!killed) await kill()
    await rm(home, { recursive: true, force: true })
  })
  return { home, run, daemonPid, kill, logs }
}
