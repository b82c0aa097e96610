import { test } from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'

test('after app.close() every health timer is gone and the process exits on its own', async (t) => {
  const fixture = join(__dirname, 'fixtures', 'close-child.ts')
  // Loaded through require() so that ts-node compiles it, whatever ESM hooks the test runner adds to the child.
  const child = spawn(process.execPath, ['--require', 'ts-node/register', '-e', `require(${JSON.stringify(fixture)})`], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true', LB_CLOSE_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let killed = false
  // A child that does not exit on its own would hang the suite: stop it by its PID and fail.
  const guard = setTimeout(() => { killed = true; child.kill('SIGKILL') }, 30_000)
  t.teardown(() => {
    clearTimeout(guard)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  t.equal(killed, false, 'it exited without being killed')
  t.equal(code, 0, err)
  const report = JSON.parse(out.trim()) as { during: number, after: number, state: string }
  t.ok(report.during >= 3, `check, ejection and slow-start timers were running (${report.during})`)
  t.equal(report.state, 'ejected', 'an ejection was running at close')
  t.equal(report.after, 0, 'no timer of lib/health is pending after close')
})
