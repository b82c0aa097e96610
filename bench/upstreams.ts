import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findProgram, freePort } from '../test/helpers/external'
import { collectOutput, firstJsonLine, type Processes } from './processes'

/** The fixed answer of upstream number i: the same length for every upstream. */
export function upstreamBody (i: number): string {
  return `hello from upstream ${String.fromCharCode(97 + i)}\n`
}

/** A path every upstream answers with LARGE_BYTES: above what fastify-lb reads whole, so the answer is streamed. */
export const LARGE_PATH = '/large'
export const LARGE_BYTES = 128 * 1024

export interface Upstreams {
  /** 'nginx 1.22.1' or 'node' */
  kind: string
  urls: string[]
  /** The process answering them all (one nginx without a master process, or one Node process). */
  pid: number
  stop: () => Promise<void>
}

/**
 * The frame of an nginx config whose files all live in `dir` (pid, logs, temp paths), not a daemon, with
 * `workers` worker processes (none but the master itself when 0) and `http` inside its http block.
 */
export function nginxFrame (dir: string, workers: number, http: string): string {
  return `daemon off;
${workers === 0 ? 'master_process off;\nworker_processes 1;' : `worker_processes ${workers};`}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_requests 100000000;
${http}
}
`
}

function nginxConfig (dir: string, ports: number[]): string {
  const servers = ports.map((port, i) => `
    server {
      listen 127.0.0.1:${port};
      location / { return 200 "${upstreamBody(i).trimEnd()}\\n"; }
      # A static file answers POST with 405: served as to a GET instead (the error_page redirect is a GET).
      location = ${LARGE_PATH} { alias ${dir}/large.txt; error_page 405 =200 $uri; }
    }`).join('')
  return nginxFrame(dir, 0, `  default_type text/plain;
  keepalive_timeout 300s;
${servers}`)
}

async function accepting (port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > end) throw new Error(`nothing listens on 127.0.0.1:${port}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * Three loopback upstreams answering a small fixed body: one nginx process
 * (worker_processes 1, no master, not a daemon) with its own config in a temp
 * directory, or a Node server when nginx is not installed.
 */
export async function startUpstreams (processes: Processes, cpu: number | null): Promise<Upstreams> {
  const nginx = findProgram('nginx')
  if (nginx === null) {
    const child = processes.start(process.execPath, ['--require', join(__dirname, 'transpile.js'), join(__dirname, 'node-upstream.ts'), '3'], cpu)
    const { ports } = await firstJsonLine<{ ports: number[] }>(child, 'node upstream', 30_000)
    return {
      kind: 'node',
      urls: ports.map((p) => `http://127.0.0.1:${p}`),
      pid: child.pid ?? 0,
      stop: async () => { await processes.stop(child) }
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'fastify-lb-bench-'))
  await mkdir(join(dir, 'tmp'))
  const ports = [await freePort(), await freePort(), await freePort()]
  await writeFile(join(dir, 'nginx.conf'), nginxConfig(dir, ports))
  await writeFile(join(dir, 'large.txt'), 'x'.repeat(LARGE_BYTES))
  const child = processes.start(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], cpu)
  const output = collectOutput(child)
  const removeDir = async (): Promise<void> => { await rm(dir, { recursive: true, force: true }) }
  processes.atStop(removeDir)
  const stop = async (): Promise<void> => {
    await processes.stop(child)
    await removeDir()
  }
  try {
    const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`nginx exited with ${String(code)}: ${output()}`))))
    // It rejects when nginx stops, also at the normal end: only the race below cares.
    exited.catch(() => {})
    await Promise.race([Promise.all(ports.map(async (p) => await accepting(p, 10_000))), exited])
  } catch (err) {
    await stop()
    throw err
  }
  const version = await new Promise<string>((resolve) => {
    const v = processes.start(nginx, ['-v'], null)
    const text = collectOutput(v)
    v.once('exit', () => resolve(/nginx\/(\S+)/.exec(text())?.[1] ?? '?'))
  })
  return { kind: `nginx ${version}`, urls: ports.map((p) => `http://127.0.0.1:${p}`), pid: child.pid ?? 0, stop }
}
