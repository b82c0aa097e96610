import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import type { OptionKey, OptionReader } from './reader'

/** A PEM certificate, key or CA bundle: its contents (not a file's path), as a string or a Buffer. */
export type Pem = string | Buffer

/** TLS towards an upstream or a registry. Its certificate is verified unless rejectUnauthorized is false. */
export interface TlsOptions {
  /** CA certificate(s) to trust instead of Node's bundled ones (PEM). */
  ca?: Pem | Pem[]
  /** Verify the peer's certificate (default true). */
  rejectUnauthorized?: boolean
  /** The name the peer's certificate must carry, when it is not the URL's host. */
  servername?: string
}

/** TLS as the HTTP clients take it (undici's `connect`, node:https). */
export interface ResolvedTls {
  rejectUnauthorized: boolean
  ca?: Pem | Pem[]
  servername?: string
}

/**
 * Checks the PEM value at `key` with `parse` (Node's own parser decides what it
 * accepts). A refusal names the field and shows only the value's type and length.
 */
export function checkPem<T> (r: OptionReader, key: OptionKey, what: string, parse: (value: Pem) => T): T {
  const value = r.value(key)
  if ((typeof value !== 'string' && !Buffer.isBuffer(value)) || value.length === 0) return r.failSecret(key, `must be ${what} in PEM, as a string or a Buffer`)
  const text = typeof value === 'string' ? value : value.toString('latin1')
  if (!text.includes('-----BEGIN ')) return r.failSecret(key, `must hold ${what} in PEM: the file's contents (readFileSync(path)), not its path`)
  try {
    return parse(value)
  } catch (err) {
    return r.failSecret(key, `is not ${what} Node can read: ${err instanceof Error ? err.message : String(err)}`)
  }
}

export const certificate = (value: Pem): X509Certificate => new X509Certificate(value)
export const privateKey = (value: Pem): KeyObject => createPrivateKey(value)

/**
 * Reads `{ rejectUnauthorized, ca, servername }`: verification stays on unless
 * turned off. `checked` also parses `ca` and requires `servername` to be a
 * non-empty string, so a mistake fails at startup rather than at the first
 * connection. The plugin's upstream `tls` has always handed `ca` and
 * `servername` to undici unchecked; checking them there would refuse
 * configurations that start today.
 */
export function readTls (r: OptionReader, checked: boolean): ResolvedTls {
  const rejectUnauthorized = r.optionalBoolean('rejectUnauthorized') !== false
  if (!checked) {
    const servername = r.value('servername')
    return { rejectUnauthorized, ca: r.value('ca') as ResolvedTls['ca'], servername: typeof servername === 'string' ? servername : undefined }
  }
  const tls: ResolvedTls = { rejectUnauthorized }
  const servername = r.optionalString('servername')
  if (servername !== undefined) tls.servername = servername
  const ca = r.value('ca')
  if (Array.isArray(ca)) {
    if (ca.length === 0) r.failSecret('ca', 'must be a CA certificate in PEM or a non-empty array of them')
    const list = r.items('ca', '')
    list.map((i) => checkPem(list, i, 'a CA certificate', certificate))
    tls.ca = ca as Pem[]
  } else if (ca !== undefined) {
    checkPem(r, 'ca', 'a CA certificate', certificate)
    tls.ca = ca as Pem
  }
  return tls
}
