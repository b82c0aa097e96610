/**
 * Fallback upstreams when nginx is not installed: N loopback HTTP servers in
 * this one process, each answering a small fixed body (and LARGE_PATH a large one).
 *   node --require ts-node/register bench/node-upstream.ts <count>
 * Prints `{"ports":[...]}` once they listen; exits on SIGTERM or SIGINT.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { LARGE_BYTES, LARGE_PATH, upstreamBody } from './upstreams'

async function main (): Promise<void> {
  const count = Number(process.argv[2] ?? '3')
  const servers: Server[] = []
  for (let i = 0; i < count; i++) {
    const body = Buffer.from(upstreamBody(i))
    const large = Buffer.alloc(LARGE_BYTES, 'x')
    const server = createServer((request, response) => {
      const answer = request.url === LARGE_PATH ? large : body
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': answer.length })
      response.end(answer)
    })
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
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
