/**
 * npm run bench:cluster [-- --seconds 5 --connections 64 --workers 2]
 * (also npm run bench -- --workers 2)
 *
 * Cluster mode (docs/cluster.md) measured two ways, in one run:
 * - throughput: the gateway with N workers (2 by default) against 1 worker, both with
 *   `cluster: true`, over three loopback upstreams (nginx, or Node), rounds
 *   alternating 1 N nginx 1 N nginx 1 so that each N-worker figure is divided by
 *   the mean of the 1-worker ones around it and by the nginx round after it
 *   (nginx with worker_processes N, when nginx is installed).
 *   Nothing is pinned: the workers need both CPUs, which wrk and the upstreams share.
 * - health-check traffic: checks per second each upstream receives from an idle
 *   gateway with 1, 2 and 4 workers in cluster mode, and with 2 workers without it.
 * Writes bench/results/cluster.md.
 */
import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { findProgram } from '../test/helpers/external'
import { DemoUpstream } from '../test/helpers/demo-upstream'
import { Processes } from './processes'
import { startNginxBalancer } from './nginx-balancer'
import { startUpstreams } from './upstreams'
import { runWrk } from './wrk'

const CHECK_INTERVAL = 200

function option (name: string, fallback: number): number {
  const at = process.argv.indexOf(name)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}

/** Starts bench/cluster-gateway.ts with `workers` workers; resolves with its shared port once they all listen. */
async function startGateway (processes: Processes, workers: number, targets: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess, url: string }> {
  const child = processes.start(process.execPath, ['--require', 'ts-node/register', join(__dirname, 'cluster-gateway.ts')], null, {
    ...process.env,
    TS_NODE_TRANSPILE_ONLY: 'true',
    BENCH_WORKERS: String(workers),
    BENCH_TARGETS: JSON.stringify(targets),
    ...env
  })
  const port = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('\n')) resolve(out.trim())
    })
    child.once('exit', (code) => reject(new Error(`the gateway exited with ${String(code)}`)))
  })
  return { child, url: `http://127.0.0.1:${port}/` }
}

async function throughput (processes: Processes, wrk: string, nginx: string | null, seconds: number, connections: number, n: number): Promise<string[]> {
  const upstreams = await startUpstreams(processes, null)
  const rps: Record<string, number[]> = { 1: [], [n]: [], nginx: [] }
  // Each group of rounds is 1 worker, N workers, then nginx with N workers; a last 1-worker round closes the
  // run, so every N-worker figure has a 1-worker round on each side to be divided by.
  const many = String(n)
  const rounds = nginx === null ? ['1', many, '1', many, '1'] : ['1', many, 'nginx', '1', many, 'nginx', '1']
  for (const kind of rounds) {
    const gateway = kind === 'nginx'
      ? await startNginxBalancer(processes, nginx as string, n, upstreams.urls)
      : await startGateway(processes, Number(kind), upstreams.urls)
    await runWrk(processes, { wrk, url: gateway.url, seconds: 2, connections, cpu: null })
    const result = await runWrk(processes, { wrk, url: gateway.url, seconds, connections, cpu: null })
    if (result.errors > 0) throw new Error(`${result.errors} errors with ${kind}`)
    rps[kind].push(result.rps)
    process.stdout.write(`${kind === 'nginx' ? 'nginx, 2 workers' : `${kind} worker(s)`}: ${Math.round(result.rps)} requests/s\n`)
    await processes.stop(gateway.child)
  }
  const ratios = rps[n].map((r, i) => r / ((rps[1][i] + rps[1][i + 1]) / 2))
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  const lines = [
    `Upstreams: ${upstreams.kind}; wrk ${connections} connections, ${seconds} s per round after 2 s of warm-up; rounds ${rounds.join(' ')}.`,
    'wrk, the upstreams and the gateway share the 2 cores, so the ratios are what to read, not the requests/s.',
    '',
    `| gateway | requests/s (mean) | against 1 worker | against nginx with ${n} workers |`,
    '| --- | --- | --- | --- |',
    `| 1 worker, cluster: true | ${Math.round(mean(rps[1]))} | 1 | |`
  ]
  const againstNginx = rps.nginx.map((x, i) => rps[n][i] / x)
  lines.push(`| ${n} workers, cluster: true | ${Math.round(mean(rps[n]))} | ${mean(ratios).toFixed(2)} (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')}) | ${againstNginx.length === 0 ? '' : `${mean(againstNginx).toFixed(2)} (rounds: ${againstNginx.map((r) => r.toFixed(2)).join(', ')})`} |`)
  if (rps.nginx.length > 0) lines.push(`| nginx, worker_processes ${n}, round robin, keepalive 64 | ${Math.round(mean(rps.nginx))} | | 1 |`)
  await upstreams.stop()
  return lines
}

async function checkTraffic (processes: Processes, seconds: number): Promise<string[]> {
  const upstreams = await Promise.all(['a', 'b', 'c'].map(async (id) => await new DemoUpstream(id).start(0)))
  const lines = [
    `Checks every ${CHECK_INTERVAL} ms (jitter 0), so ${1000 / CHECK_INTERVAL} checks per second per upstream is one checker; counted by the upstreams over ${seconds} s of an idle gateway.`,
    '',
    '| gateway | checks per second per upstream (a, b, c) |',
    '| --- | --- |'
  ]
  const cases: Array<[string, number, Record<string, string>]> = [
    ['1 worker, cluster: true', 1, {}], ['2 workers, cluster: true', 2, {}], ['4 workers, cluster: true', 4, {}], ['2 workers, without cluster mode', 2, { BENCH_CLUSTER: '0' }]
  ]
  for (const [name, workers, env] of cases) {
    const gateway = await startGateway(processes, workers, upstreams.map((u) => u.url), { BENCH_INTERVAL: String(CHECK_INTERVAL), ...env })
    const before = upstreams.map((u) => u.healthHits + u.hits)
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    const rates = upstreams.map((u, i) => ((u.healthHits + u.hits - before[i]) / seconds).toFixed(1))
    lines.push(`| ${name} | ${rates.join(', ')} |`)
    process.stdout.write(`${name}: ${rates.join(', ')} checks/s\n`)
    await processes.stop(gateway.child)
  }
  await Promise.all(upstreams.map(async (u) => { await u.stop() }))
  return lines
}

export interface ClusterBench {
  seconds: number
  connections: number
  /** Workers measured against one (the throughput rounds). */
  workers: number
}

/** Runs both measurements and writes bench/results/cluster.md. */
export async function runCluster ({ seconds, connections, workers }: ClusterBench): Promise<void> {
  const processes = new Processes()
  const nginx = findProgram('nginx')
  const wrk = findProgram('wrk')
  const out = ['# Cluster mode', '', `Run on ${new Date().toISOString()}, Node ${process.version}.`, '', '## Throughput', '']
  try {
    if (wrk === null) out.push('wrk is not installed: no throughput figures.')
    else out.push(...await throughput(processes, wrk, nginx, seconds, connections, workers))
    if (nginx === null) out.push('', `nginx is not installed here (\`command -v nginx\` finds nothing): no nginx figure with ${workers} workers.`)
    out.push('', '## Health-check traffic', '', ...await checkTraffic(processes, seconds))
  } finally {
    await processes.stopAll()
  }
  const text = out.join('\n') + '\n'
  await writeFile(join(__dirname, 'results', 'cluster.md'), text)
  process.stdout.write('\n' + text)
}

if (require.main === module) {
  const workers = option('--workers', 2)
  if (!Number.isInteger(workers) || workers < 2) throw new Error(`--workers must be an integer of 2 or more, not ${workers}`)
  runCluster({ seconds: option('--seconds', 5), connections: option('--connections', 64), workers }).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
