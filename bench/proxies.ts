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
export async function startProxy (processes: Processes, name: string, upstreams: string[], cpu: number | null, nodeArgs: string[] = []): Promise<StartedProxy> {
  const child = processes.start(process.execPath, [...nodeArgs, '--require', join(__dirname, 'transpile.js'), join(__dirname, 'proxy.ts'), name, ...upstreams], null)
  const { port } = await firstJsonLine<{ port: number }>(child, `proxy ${name}`, 120_000)
  if (cpu !== null) await pin(child.pid ?? 0, cpu)
  return { url: `http://127.0.0.1:${port}/`, pid: child.pid ?? 0 }
}
