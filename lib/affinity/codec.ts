/** What a valid affinity cookie value says: the target it pins to, until when, and whether to sign it again. */
export interface Pin {
  id: string
  /** Epoch seconds, 0 for none. */
  expiry: number
  /** When the cookie was last issued or renewed under an idle timeout, epoch seconds; 0 for none. */
  renewed: number
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
  encode: (id: string, expiry: number, renewed?: number) => string
  /** The pin of a value signed with an accepted key; null for anything else. */
  decode: (value: string) => Pin | null
}

/**
 * The times a cookie carries, base 36 epoch seconds: `<expiry>`, or
 * `<expiry>-<renewed>` under an idle timeout. Ids may hold '.' and '-', times
 * hold neither '.' nor upper case: the last '.' of a payload ends the id.
 */
export const TIMES = '[0-9a-z]{1,9}(?:-[0-9a-z]{1,9})?'
/** A target id as the cookie carries it, and its times: `<id>.<times>`. */
export const PAYLOAD = new RegExp(`^([A-Za-z0-9._~-]{1,64})\\.(${TIMES})$`)
/** The longest `<times>`. */
export const TIMES_LENGTH = 9 + 1 + 9

/** `<expiry>` or `<expiry>-<renewed>` (a value without a renewal time reads as it always did). */
export function times (expiry: number, renewed: number): string {
  return renewed === 0 ? expiry.toString(36) : `${expiry.toString(36)}-${renewed.toString(36)}`
}

/** The pin of an id and times whose signature was checked. */
export function pinOf (id: string, text: string, renew: boolean): Pin {
  const dash = text.indexOf('-')
  if (dash === -1) return { id, expiry: parseInt(text, 36), renewed: 0, renew }
  return { id, expiry: parseInt(text.slice(0, dash), 36), renewed: parseInt(text.slice(dash + 1), 36), renew }
}

export function payload (id: string, expiry: number, renewed: number): string {
  return `${id}.${times(expiry, renewed)}`
}

/** The pin of a `<id>.<times>` payload whose signature was checked, or null. */
export function readPayload (text: string, renew: boolean): Pin | null {
  const match = PAYLOAD.exec(text)
  return match === null ? null : pinOf(match[1], match[2], renew)
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

  encode (id: string, expiry: number, renewed = 0): string {
    return this.codec.encode(id, expiry, renewed)
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
