/**
 * One upstream of the soak run (npm run soak), in a process of its own so that
 * the run can kill it outright and start it again on the same port. SIGUSR1
 * makes it answer slowly, SIGUSR2 normally again. Prints {"port"} when listening.
 */
import { DemoUpstream } from '../test/helpers/demo-upstream'

const upstream = new DemoUpstream(process.env.SOAK_ID ?? 'upstream')
upstream.delayMs = Number(process.env.SOAK_SLOW_MS ?? 150)
process.on('SIGUSR1', () => { upstream.mode = 'slow' })
process.on('SIGUSR2', () => { upstream.mode = 'ok' })
process.once('SIGTERM', () => { upstream.stop().finally(() => process.exit(0)) })
upstream.start(Number(process.env.SOAK_PORT ?? 0)).then(() => {
  process.stdout.write(JSON.stringify({ port: upstream.port }) + '\n')
}, (err: unknown) => {
  process.stderr.write(String(err) + '\n')
  process.exit(1)
})
