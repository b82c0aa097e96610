import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { Client } from './gateway'
import { eventually, freePort, startProcess } from './external'

export interface Vector {
  metric: Record<string, string>
  value: [number, string]
}

export interface Prometheus {
  /** Base URL of its HTTP API. */
  api: string
  /** The temporary directory holding its config and data, removed at teardown; a test may put rule files in it. */
  dir: string
  /** An instant query; throws unless Prometheus answers success. */
  query: (promql: string) => Promise<Vector[]>
  /** The `data` of a GET on the HTTP API, e.g. '/api/v1/alerts'; throws unless Prometheus answers success. */
  get: <T>(path: string) => Promise<T>
  /** Its log so far, for failure messages. */
  output: () => string
}

export interface PrometheusOptions {
  /** host:port of the gateway to scrape (job "gateway", every second). */
  target: string
  /** Writes rule files into the temporary directory before start; returns their paths. */
  rules?: (dir: string) => Promise<string[]>
}

/**
 * Starts a real Prometheus (at `program`) on a free loopback port that scrapes
 * `target` and evaluates rules every second, and resolves once it has scraped
 * the target once. The test's teardown stops it by its PID and removes its directory.
 */
export async function startPrometheus (t: Test, program: string, client: Client, options: PrometheusOptions): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'lb-prometheus-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const ruleFiles = options.rules === undefined ? [] : await options.rules(dir)
  const config = join(dir, 'prometheus.yml')
  await writeFile(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    ...(ruleFiles.length === 0 ? [] : ['rule_files:', ...ruleFiles.map((f) => `  - '${f}'`)]),
    'scrape_configs:',
    '  - job_name: gateway',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ['${options.target}']`,
    ''
  ].join('\n'))
  const port = await freePort()
  const api = `http://127.0.0.1:${port}`
  // Teardowns run last in, first out: Prometheus stops before its directory goes.
  const server = startProcess(t, program, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'
  ])
  const get = async <T>(path: string): Promise<T> => {
    const res = await client.send(api + path)
    const body = JSON.parse(res.text) as { status: string, data: T }
    if (body.status !== 'success') throw new Error(res.text)
    return body.data
  }
  const query = async (promql: string): Promise<Vector[]> =>
    (await get<{ result: Vector[] }>(`/api/v1/query?query=${encodeURIComponent(promql)}`)).result
  try {
    await eventually(async () => (await client.send(`${api}/-/ready`)).status, (s) => s === 200, 20_000, 'Prometheus ready')
    // Prometheus hands static targets to its scrapers after up to 5 s.
    await eventually(async () => query('up{job="gateway"}'), (r) => r.length === 1 && r[0].value[1] === '1', 15_000, 'a first scrape')
  } catch (err) {
    t.comment(server.output())
    throw err
  }
  return { api, dir, query, get, output: server.output }
}
