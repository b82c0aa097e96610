/**
 * What the benchmark's Node upstream processes share: HTTP servers on
 * 127.0.0.1, port 0, that announce their ports as one JSON line on stdout and
 * close on SIGTERM or SIGINT.
 */
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * One server per handler, each on a loopback port of its own; prints
 * `{"ports":[...]}` once all listen, and exits once they have closed after
 * SIGTERM or SIGINT (open connections are cut).
 */
export async function serveOnLoopback (handlers: RequestListener[]): Promise<Server[]> {
  const servers: Server[] = []
  for (const handler of handlers) {
    const server = createServer(handler)
    server.keepAliveTimeout = 300_000
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
  }
  process.stdout.write(JSON.stringify({ ports: servers.map((s) => (s.address() as AddressInfo).port) }) + '\n')
  const stop = (): void => {
    for (const s of servers) s.closeAllConnections()
    Promise.all(servers.map(async (s) => await new Promise((resolve) => s.close(resolve)))).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  return servers
}

/** Runs a process's main function; an error is printed and ends the process with 1. */
export function runMain (main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
