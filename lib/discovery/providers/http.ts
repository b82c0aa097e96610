import { Agent, request } from 'undici'
import type { ResolvedRegistryTls } from '../options'

/** Answers larger than this are refused: a registry answer is a list of instances, not a download. */
const MAX_BODY_BYTES = 16 * 1024 * 1024

/**
 * An HTTP client of a provider's own, so its long polls share nothing with the
 * gateway's upstream connections. `tls` applies to its https connections.
 */
export function registryAgent (tls?: ResolvedRegistryTls): Agent {
  return new Agent({ connections: 2, pipelining: 0, connect: tls === undefined ? undefined : { ...tls } })
}

/** A registry answered with a status other than 200; `body` is the start of what it said. */
export class RegistryAnswerError extends Error {
  readonly status: number
  readonly body: string

  constructor (status: number, body: string) {
    const start = body.slice(0, 200).trim()
    super(`answered ${status}: ${start}`)
    this.status = status
    this.body = start
  }
}

export interface JsonAnswer {
  headers: Record<string, string | string[] | undefined>
  body: unknown
}

/**
 * Sends a request to a registry and parses its JSON answer. Any status but 200
 * throws a RegistryAnswerError, naming the status and the start of the body
 * (registries explain themselves there).
 */
export async function requestJson (
  agent: Agent,
  url: string,
  init: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string, signal: AbortSignal, headersTimeout: number, bodyTimeout: number }
): Promise<JsonAnswer> {
  const res = await request(url, {
    dispatcher: agent,
    method: init.method ?? 'GET',
    headers: init.headers,
    body: init.body,
    signal: init.signal,
    headersTimeout: init.headersTimeout,
    bodyTimeout: init.bodyTimeout
  })
  const length = Number(res.headers['content-length'] ?? 0)
  if (length > MAX_BODY_BYTES) {
    await res.body.dump()
    throw new Error(`answer of ${length} bytes is too large`)
  }
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new RegistryAnswerError(res.statusCode, text)
  try {
    return { headers: res.headers, body: JSON.parse(text) }
  } catch {
    throw new Error('answered with a body that is not JSON')
  }
}
