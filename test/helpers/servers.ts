import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startProcess, type Started } from './external'

/** A temporary directory removed at teardown. */
export async function tempDir (t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fastify-lb-${prefix}-`))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Stops a started program by its PID now (SIGTERM, then SIGKILL after 5 s) and waits until it has exited. */
export async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const pid = child.pid
  process.kill(pid, 'SIGTERM')
  const timer = setTimeout(() => { if (child.exitCode === null) process.kill(pid, 'SIGKILL') }, 5000)
  await exited
  clearTimeout(timer)
}

/**
 * A server program the test can stop and start again with the same arguments
 * (same ports, same data). Each run is stopped by its PID at teardown at the latest.
 */
export class Restartable {
  private run: Started | null = null
  private readonly t: Test
  private readonly path: string
  private readonly args: () => string[]

  constructor (t: Test, path: string, args: () => string[]) {
    this.t = t
    this.path = path
    this.args = args
  }

  get running (): boolean {
    const child = this.run?.child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  get pid (): number | undefined {
    return this.run?.child.pid
  }

  /** Output of the current (or last) run, for failure messages. */
  output (): string {
    return this.run?.output() ?? ''
  }

  start (): void {
    if (this.running) throw new Error(`${this.path} is running already`)
    this.run = startProcess(this.t, this.path, this.args())
  }

  async stop (): Promise<void> {
    if (this.run !== null) await stopChild(this.run.child)
  }
}
