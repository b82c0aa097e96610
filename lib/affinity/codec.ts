/** What a valid affinity cookie value says: the target it pins to, until when, and whether to sign it again. */
export interface Pin {
  id: string
  /** Epoch seconds, 0 for none. */
  expiry: number
  /** Signed with a key that no longer signs: the value is issued again with the current one. */
  renew: boolean
}

/**
 * Turns a pin into a cookie value and back. The value's integrity is the
 * codec's business, its expiry the affinity's (checked on every request).
 */
export interface AffinityCodec {
  /** Values longer than this are refused unread. */
  readonly maxLength: number
  encode: (id: string, expiry: number) => string
  /** The pin of a value signed with an accepted key; null for anything else. */
  decode: (value: string) => Pin | null
}

/** A target id as the cookie carries it, and the expiry in base 36: `<id>.<expiry>`. */
export const PAYLOAD = /^([A-Za-z0-9._~-]{1,64})\.([0-9a-z]{1,9})$/

export function payload (id: string, expiry: number): string {
  return `${id}.${expiry.toString(36)}`
}

/** The pin of a `<id>.<expiry>` payload whose signature was checked, or null. */
export function readPayload (text: string, renew: boolean): Pin | null {
  const match = PAYLOAD.exec(text)
  return match === null ? null : { id: match[1], expiry: parseInt(match[2], 36), renew }
}

/**
 * Equality in a time that does not depend on where two values differ: on a
 * connection shared by several clients (a proxy in front of the gateway), the
 * remembered value may be another client's valid cookie.
 */
function sameValue (a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/**
 * A codec that remembers the last value decoded on each client connection.
 * Decoding is a pure function of the value, so an equal value needs no second
 * signature check, the costliest step of a request: a returning client sends
 * the same cookie on every request of its connection. An entry lives as long as
 * its connection: nothing accumulates per client.
 */
export class ConnectionMemo {
  private readonly last = new WeakMap<object, { value: string, pin: Pin | null }>()

  constructor (readonly codec: AffinityCodec) {}

  encode (id: string, expiry: number): string {
    return this.codec.encode(id, expiry)
  }

  decode (value: string, connection: object | null): Pin | null {
    if (value.length > this.codec.maxLength) return null
    const last = connection === null ? undefined : this.last.get(connection)
    if (last !== undefined && sameValue(last.value, value)) return last.pin
    const pin = this.codec.decode(value)
    // Only valid values are remembered: a client sending forged ones gets no help.
    if (pin !== null && connection !== null) {
      if (last !== undefined) {
        last.value = value
        last.pin = pin
      } else {
        this.last.set(connection, { value, pin })
      }
    }
    return pin
  }
}
