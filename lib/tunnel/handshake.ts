import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { copiedRequestHeaders, type ForwardedSource } from '../forward/request-headers'

type Headers = ReturnType<typeof copiedRequestHeaders>

/**
 * The headers of a WebSocket upgrade as it goes to a target: the client's,
 * without what concerns its own connection (Connection and the headers it
 * lists, the other hop-by-hop ones), with the target's Host, the forwarding
 * headers, and the one hop-by-hop pair a tunnel needs: `Connection: Upgrade`
 * and the client's `Upgrade`.
 */
export function upgradeRequestHeaders (source: ForwardedSource, client: IncomingHttpHeaders, host: string, forwarded: boolean): Headers {
  const headers = copiedRequestHeaders(source, client, host, forwarded)
  headers.connection = 'Upgrade'
  headers.upgrade = client.upgrade
  return headers
}

/** Answer headers that describe the target's connection and never pass a tunnel's 101 (Connection and Upgrade do). */
const DROPPED = new Set(['keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'te', 'content-length'])

/**
 * The head of the 101 the client gets: the target's status line and headers
 * as it sent them (Sec-WebSocket-Accept, the chosen subprotocol and
 * extensions, its cookies), then the gateway's own Set-Cookie (affinity),
 * last so a browser keeps it over a target's cookie of the same name.
 */
export function switchingHead (answer: IncomingMessage, cookies: readonly string[]): string {
  let head = `HTTP/1.1 101 ${answer.statusMessage === '' ? 'Switching Protocols' : answer.statusMessage}\r\n`
  const raw = answer.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if (DROPPED.has(raw[i].toLowerCase())) continue
    head += `${raw[i]}: ${raw[i + 1]}\r\n`
  }
  for (const cookie of cookies) head += `Set-Cookie: ${cookie}\r\n`
  return head + '\r\n'
}
