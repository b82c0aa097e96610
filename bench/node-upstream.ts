/**
 * Fallback upstreams when nginx is not installed: N loopback HTTP servers in
 * this one process, each answering a small fixed body (and LARGE_PATH a large one).
 *   node --require ts-node/register bench/node-upstream.ts <count>
 * Prints `{"ports":[...]}` once they listen; exits on SIGTERM or SIGINT.
 */
import { runMain, serveOnLoopback } from './loopback-servers'
import { LARGE_BYTES, LARGE_PATH, upstreamBody } from './upstreams'

runMain(async () => {
  const count = Number(process.argv[2] ?? '3')
  const large = Buffer.alloc(LARGE_BYTES, 'x')
  await serveOnLoopback(Array.from({ length: count }, (_, i) => {
    const body = Buffer.from(upstreamBody(i))
    return (request, response) => {
      const answer = request.url === LARGE_PATH ? large : body
      response.writeHead(200, { 'content-type': 'text/plain', 'content-length': answer.length })
      response.end(answer)
    }
  }))
})
