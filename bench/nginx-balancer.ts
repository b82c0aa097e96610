import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { ChildProcess } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../test/helpers/external'
import { collectOutput, type Processes } from './processes'
import { nginxFrame } from './upstreams'

function config (dir: string, port: number, workers: number, targets: string[]): string {
  const servers = targets.map((url) => `    server ${url.replace('http://', '')};`).join('\n')
  // What a careful nginx load balancer would run: round robin over kept-alive upstream connections
  // (HTTP/1.1, Connection cleared), access log off like the gateway's.
  return nginxFrame(dir, workers, `  upstream pool {
${servers}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://pool;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`)
}

/**
 * nginx as a load balancer with `workers` worker processes (and its master,
 * in the foreground) in front of `targets`; resolves once it accepts.
 */
export async function startNginxBalancer (processes: Processes, nginx: string, workers: number, targets: string[]): Promise<{ child: ChildProcess, url: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-lb-bench-nginx-'))
  await mkdir(join(dir, 'tmp'))
  const port = await freePort()
  await writeFile(join(dir, 'nginx.conf'), config(dir, port, workers, targets))
  processes.atStop(async () => { await rm(dir, { recursive: true, force: true }) })
  const child = processes.start(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], null)
  const output = collectOutput(child)
  const url = `http://127.0.0.1:${port}/`
  const end = Date.now() + 10_000
  for (;;) {
    const ok = await fetch(url).then(async (res) => { await res.arrayBuffer(); return res.status === 200 }, () => false)
    if (ok) return { child, url }
    if (child.exitCode !== null || Date.now() > end) throw new Error(`nginx did not start: ${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
