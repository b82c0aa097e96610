/**
 * npm run bench:affinity [-- --clients 100000 --requests 1000000]
 *
 * Whether affinity keeps anything per client: a gateway (a child process
 * pinned to CPU 0, node --expose-gc) with one affinity pool proxies to three
 * nginx upstreams; this process (pinned to CPU 1) plays the clients over HTTP
 * with keep-alive connections. Each client's first request has no cookie and
 * gets one; every later request of the client sends it back. Requests go to
 * clients in turn (client = request number mod clients), so the run holds
 * 100k distinct valid cookies. At each checkpoint the load pauses, the gateway
 * runs a full GC and reports its memory; the RSS after all requests must stay
 * within 10% of the RSS after the first 10k.
 * Writes bench/results/affinity-memory.json and .md.
 */
import { cpus } from 'node:os'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Pool } from 'undici'
import { findProgram } from '../test/helpers/external'
import { loadAverage, pin, Processes, rssBytes } from './processes'
import { startProxy } from './proxies'
import { startUpstreams, type Upstreams } from './upstreams'

const CONCURRENCY = 32
const LIMIT = 1.10

interface Checkpoint {
  requests: number
  /** RSS of the gateway after a full GC, from /proc. */
  rss: number
  heapUsed: number
  external: number
  cookiesIssued: number
  seconds: number
}

function option (argv: string[], flag: string, fallback: number): number {
  const i = argv.indexOf(flag)
  return i === -1 ? fallback : Number(argv[i + 1])
}

const mb = (bytes: number): string => (bytes / 1048576).toFixed(1)

async function main (): Promise<void> {
  const argv = process.argv.slice(2)
  const clients = option(argv, '--clients', 100_000)
  const total = option(argv, '--requests', 1_000_000)
  const checkpoints = [10_000, 100_000, 250_000, 500_000, total].filter((n, i, all) => n <= total && all.indexOf(n) === i)
  const pinning = cpus().length >= 2 && findProgram('taskset') !== null
  const processes = new Processes()
  let upstreams: Upstreams | null = null
  let client: Pool | null = null
  const results: Checkpoint[] = []
  const loadBefore = loadAverage()[0]
  let issued = 0
  try {
    if (pinning) await pin(process.pid, 1)
    upstreams = await startUpstreams(processes, pinning ? 1 : null)
    const gateway = await startProxy(processes, 'affinity-memory', upstreams.urls, pinning ? 0 : null, ['--expose-gc'])
    const origin = gateway.url.replace(/\/$/, '')
    const pool = client = new Pool(origin, { connections: CONCURRENCY, pipelining: 1 })
    const cookies: Array<string | undefined> = new Array(clients)
    let next = 0
    const one = async (n: number): Promise<void> => {
      const c = n % clients
      const cookie = cookies[c]
      const res = await pool.request({ path: '/', method: 'GET', headers: cookie === undefined ? {} : { cookie } })
      await res.body.dump()
      if (res.statusCode !== 200) throw new Error(`request ${n} answered ${res.statusCode}`)
      const set = res.headers['set-cookie']
      if (set !== undefined) {
        issued++
        cookies[c] = (Array.isArray(set) ? set[0] : set).split(';')[0]
      }
    }
    const start = Date.now()
    for (const limit of checkpoints) {
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < limit) await one(next++)
      }))
      const res = await pool.request({ path: '/__bench/memory', method: 'GET' })
      const memory = await res.body.json() as NodeJS.MemoryUsage
      const rss = rssBytes(gateway.pid) ?? memory.rss
      const point = { requests: limit, rss, heapUsed: memory.heapUsed, external: memory.external + memory.arrayBuffers, cookiesIssued: issued, seconds: (Date.now() - start) / 1000 }
      results.push(point)
      process.stdout.write(`${limit} requests: RSS ${mb(rss)} MB, heap used ${mb(memory.heapUsed)} MB, cookies issued ${issued}, ${point.seconds.toFixed(0)} s\n`)
    }
  } finally {
    await client?.close()
    await upstreams?.stop()
    await processes.stopAll()
  }
  const first = results[0]
  const last = results[results.length - 1]
  const ratio = last.rss / first.rss
  const lines = [
    `Run of ${new Date().toISOString()}: \`npm run bench:affinity -- --clients ${clients} --requests ${total}\`, Node ${process.version}, ` +
      `load average (1 min) ${loadBefore.toFixed(2)} before and ${loadAverage()[0].toFixed(2)} after. ` +
      `${clients} clients take turns, each sending back the cookie of its first answer; the gateway's memory after a full GC.`,
    '',
    '| requests | RSS MB | × RSS at first checkpoint | heap used MB | external + array buffers MB | cookies issued |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.requests.toLocaleString('en-US')} | ${mb(r.rss)} | ${(r.rss / first.rss).toFixed(3)} | ${mb(r.heapUsed)} | ${mb(r.external)} | ${r.cookiesIssued.toLocaleString('en-US')} |`),
    '',
    `RSS after ${last.requests.toLocaleString('en-US')} requests is ${ratio.toFixed(3)}× the RSS after ${first.requests.toLocaleString('en-US')}: ` +
      (ratio <= LIMIT ? `within ${Math.round((LIMIT - 1) * 100)}%.` : `MORE than ${Math.round((LIMIT - 1) * 100)}% above.`)
  ]
  const dir = join(__dirname, 'results')
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'affinity-memory.json'), JSON.stringify({ clients, total, results, ratio, withinLimit: ratio <= LIMIT }, null, 2) + '\n')
  await writeFile(join(dir, 'affinity-memory.md'), lines.join('\n') + '\n')
  process.stdout.write('\n' + lines.join('\n') + '\n')
  if (ratio > LIMIT) process.exitCode = 1
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
