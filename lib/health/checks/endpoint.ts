/** Where a check goes: parsed once per target, not once per check. */
export interface CheckEndpoint {
  tls: boolean
  /** Host name or address as the socket layer wants it (IPv6 without brackets). */
  hostname: string
  port: number
  /** The target's base path ('' for none); HTTP check paths go below it. */
  basePath: string
}

/** How a check ended: undefined when it passed, else a short reason without any address. */
export type CheckDone = (error: string | undefined) => void

/** Stops a check in flight and frees its socket; its done callback is then never called. */
export type CancelCheck = () => void

export function endpointOf (origin: string, basePath: string, port: number | null): CheckEndpoint {
  const url = new URL(origin)
  const tls = url.protocol === 'https:'
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  return { tls, hostname, port: port ?? (url.port === '' ? (tls ? 443 : 80) : Number(url.port)), basePath }
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ETIMEDOUT: 'timeout',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable'
}

/**
 * A reason for a failed connection. Node's messages name the address
 * ("connect ECONNREFUSED 10.0.0.1:80"); the code alone does not.
 */
export function describeSocketError (err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return 'connection failed'
  return REASONS[code] ?? code
}
