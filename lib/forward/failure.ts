import type { FailureKind } from '../pool/pool'

const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'ERR_SSL_WRONG_VERSION_NUMBER'
])

/** Why a try failed, from the HTTP client's error. */
export function classifyFailure (err: unknown): FailureKind {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string') {
    if (CONNECT_CODES.has(code)) return 'connect'
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout'
    if (code === 'UND_ERR_ABORTED') return 'aborted'
  }
  return 'reset'
}

/** undici's checks of a request before sending it (a header or body it will not send): errors of the gateway, not of a target. */
const REFUSALS = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'])

export function refusedByClient (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && REFUSALS.has(code)
}
