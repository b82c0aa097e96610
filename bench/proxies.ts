import { join } from 'node:path'
import { firstJsonLine, pin, type Processes } from './processes'

export interface StartedProxy {
  url: string
  pid: number
}

/**
 * Starts the proxy of one case in a child process (bench/proxy.ts). It starts
 * unpinned, so that compiling uses every CPU, and is moved with all its threads
 * to `cpu` once it listens. `nodeArgs` go to node first (e.g. --cpu-prof).
 */
export async function startProxy (
  processes: Processes, name: string, upstreams: string[], cpu: number | null, nodeArgs: string[] = [], env: NodeJS.ProcessEnv = process.env
): Promise<StartedProxy> {
  const child = processes.start(process.execPath, [...nodeArgs, '--require', join(__dirname, 'transpile.js'), join(__dirname, 'proxy.ts'), name, ...upstreams], null, env)
  const { port } = await firstJsonLine<{ port: number }>(child, `proxy ${name}`, 120_000)
  if (cpu !== null) await pin(child.pid ?? 0, cpu)
  return { url: `http://127.0.0.1:${port}/`, pid: child.pid ?? 0 }
}

/**
 * A cookie as long as the benchmark pool's affinity cookie (`lb_bench=` and 48
 * characters), under another name: every case's requests carry the same bytes,
 * since parsing and forwarding a Cookie header has a cost of its own.
 */
const OTHER_COOKIE = `lb_other=${'x'.repeat(48)}`

/**
 * One request through a proxy, to check that it answers the upstream's body
 * before it is measured. Returns the headers wrk must send: the affinity
 * cookie the proxy just set for a case of returning clients (`sticky`), a
 * cookie of the same length under another name for every other case.
 */
export async function probe (url: string, sticky: boolean): Promise<string[]> {
  const res = await fetch(url)
  const body = await res.text()
  if (res.status !== 200 || !body.startsWith('hello from upstream')) throw new Error(`${url} answered ${res.status}: ${body.slice(0, 200)}`)
  if (!sticky) return [`Cookie: ${OTHER_COOKIE}`]
  const setCookie = res.headers.get('set-cookie')
  if (setCookie === null) throw new Error(`${url} set no affinity cookie`)
  const cookie = setCookie.split(';')[0]
  if (cookie.length !== OTHER_COOKIE.length) process.stderr.write(`warning: the affinity cookie has ${cookie.length} characters, the others' ${OTHER_COOKIE.length}\n`)
  return [`Cookie: ${cookie}`]
}
