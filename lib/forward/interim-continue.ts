import type { Socket } from 'node:net'

/**
 * undici destroys a connection whose answer begins with `100 Continue` when it
 * did not send `Expect` (it never does), and the try fails as a broken answer.
 * RFC 9110 section 15.2 has a client ignore an unexpected 1xx: some servers
 * send 100 Continue before every answer to a request with a body. This makes
 * undici's HTTP/1 parser take a 100 as the other 1xx answers it already skips,
 * by reporting it as 199, an unassigned 1xx status, so the final answer that
 * follows is read as usual. The parser is not exported: its prototype is
 * reached, once, through the first connection undici sets it up on; if that
 * shape ever changes, nothing is patched and a 100 fails the try as before
 * (test/reliability/waits.test.ts notices).
 */
let patched = false

interface ParserPrototype {
  onHeadersComplete: (this: unknown, statusCode: number, upgrade: boolean, shouldKeepAlive: boolean) => number
}

export function skipUnsolicitedContinue (socket: Socket): void {
  if (patched) return
  patched = true
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'parser')
  const parser: unknown = key === undefined ? undefined : (socket as unknown as Record<symbol, unknown>)[key]
  if (typeof parser !== 'object' || parser === null) return
  const proto = Object.getPrototypeOf(parser) as Partial<ParserPrototype>
  const original = proto.onHeadersComplete
  if (typeof original !== 'function' || original.length !== 3) return
  proto.onHeadersComplete = function onHeadersComplete (statusCode, upgrade, shouldKeepAlive) {
    return original.call(this, statusCode === 100 ? 199 : statusCode, upgrade, shouldKeepAlive)
  }
}
