import { connect } from 'node:net'

/** The payload of a chunked body (chunk extensions and trailers ignored). */
function dechunk (text: string): string {
  let out = ''
  let at = 0
  for (;;) {
    const line = text.indexOf('\r\n', at)
    const size = line === -1 ? 0 : parseInt(text.slice(at, line), 16)
    if (!(size > 0)) return out
    out += text.slice(line + 2, line + 2 + size)
    at = line + 2 + size + 2
  }
}

export interface RawAnswer {
  status: number
  head: string
  body: string
}

/**
 * Sends a hand-written request (request line and header lines, without the
 * final blank line) over a fresh connection, exactly as given: bytes an HTTP
 * client library would refuse or normalise. `Connection: close` is added; the
 * answer is read until the gateway closes the connection.
 */
export async function rawRequest (port: number, lines: string[], body = ''): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      const head = end === -1 ? text : text.slice(0, end)
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0)
      const body = end === -1 ? '' : text.slice(end + 4)
      resolve({ status, head, body: /\r\ntransfer-encoding: chunked/i.test(head) ? dechunk(body) : body })
    })
    socket.write(Buffer.from([...lines, 'Connection: close', '', body].join('\r\n'), 'latin1'))
  })
}
