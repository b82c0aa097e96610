/**
 * One benchmarked proxy, in a process of its own:
 *   node --require ts-node/register bench/proxy.ts <case> <upstream URL>...
 * Prints `{"port":N}` on stdout once it listens on 127.0.0.1; exits cleanly on
 * SIGTERM or SIGINT, so that `node --cpu-prof` writes its profile.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { build } from './cases'

/**
 * bench:profile --allocations: SIGUSR2 starts V8's sampling heap profiler,
 * counting objects that die young too; the next SIGUSR2 stops it, writes the
 * profile to `file` and prints `{"written":file}`.
 */
function sampleAllocationsOnSignal (file: string): void {
  const session = new Session()
  session.connect()
  let sampling = false
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true
      session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
      return
    }
    sampling = false
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (err !== null) throw err
      writeFileSync(file, JSON.stringify(result.profile))
      process.stdout.write(JSON.stringify({ written: file }) + '\n')
    })
  })
}

async function main (): Promise<void> {
  const [name, ...upstreams] = process.argv.slice(2)
  if (name === undefined || upstreams.length === 0) throw new Error('usage: proxy.ts <case> <upstream URL>...')
  const app = await build(name, upstreams)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const allocations = process.env.BENCH_ALLOCATION_PROFILE
  if (allocations !== undefined) sampleAllocationsOnSignal(allocations)
  process.stdout.write(JSON.stringify({ port: address.port }) + '\n')
  let closing = false
  const stop = (): void => {
    if (closing) return
    closing = true
    const force = setTimeout(() => process.exit(0), 3000)
    force.unref()
    app.close().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
