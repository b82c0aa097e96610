import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type { Test } from 'tap'

export interface TsChild {
  child: ChildProcess
  /** Resolves with the next line the child writes to stdout. */
  line: () => Promise<string>
  /** Resolves with the exit code once the child has exited; `killed` if the guard had to kill it. */
  exited: Promise<{ code: number | null, killed: boolean }>
  stderr: () => string
}

/**
 * Starts a TypeScript file of the suite in a child Node process (through
 * ts-node, from the repository root) with extra environment variables. A guard
 * kills it by its PID after `guardMs`, and teardown kills it if it still runs,
 * so a child that fails to exit on its own fails its test instead of hanging it.
 */
export function startTsChild (t: Test, file: string, env: Record<string, string>, guardMs = 30_000): TsChild {
  const root = join(__dirname, '..', '..')
  // Loaded through require() so that ts-node compiles it, whatever ESM hooks the test runner adds to the child.
  const child = spawn(process.execPath, ['--require', 'ts-node/register', '-e', `require(${JSON.stringify(file)})`], {
    cwd: root,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let killed = false
  const guard = setTimeout(() => {
    killed = true
    child.kill('SIGKILL')
  }, guardMs)
  t.teardown(() => {
    clearTimeout(guard)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let err = ''
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString() })
  let buffered = ''
  const lines: string[] = []
  const waiting: Array<(line: string) => void> = []
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    for (let at = buffered.indexOf('\n'); at !== -1; at = buffered.indexOf('\n')) {
      const line = buffered.slice(0, at)
      buffered = buffered.slice(at + 1)
      const next = waiting.shift()
      if (next !== undefined) next(line)
      else lines.push(line)
    }
  })
  const exited = new Promise<{ code: number | null, killed: boolean }>((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(guard)
      resolve({ code, killed })
    })
  })
  return {
    child,
    exited,
    stderr: () => err,
    line: async () => {
      const ready = lines.shift()
      if (ready !== undefined) return ready
      return new Promise<string>((resolve, reject) => {
        waiting.push(resolve)
        exited.then(() => reject(new Error(`the child exited before writing a line: ${err}`)), () => {})
      })
    }
  }
}
