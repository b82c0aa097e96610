import { chromium, type Browser } from 'playwright-core'
import type { Test } from 'tap'
import { requireProgram } from './external'

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/**
 * A real headless Chromium (the `chromium` on PATH) driven by playwright-core,
 * stopped when the test ends: by close(), else by its PID. Null when Chromium
 * is missing and LB_INTEGRATION is not set (the test is then skipped, saying
 * why; under LB_INTEGRATION=1 it fails).
 */
export async function startChromium (t: Test): Promise<Browser | null> {
  const executablePath = requireProgram(t, 'chromium', 'Chromium')
  if (executablePath === null) return null
  const server = await chromium.launchServer({ executablePath, args: ARGS })
  const pid = server.process().pid
  let browser: Browser | null = null
  t.teardown(async () => {
    await browser?.close()
    await server.close()
    // close() ends the browser; if it did not, its PID goes.
    if (pid !== undefined && server.process().exitCode === null) process.kill(pid, 'SIGKILL')
  })
  browser = await chromium.connect(server.wsEndpoint())
  return browser
}
