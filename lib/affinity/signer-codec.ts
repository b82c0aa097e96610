import { payload, readPayload, type AffinityCodec, type Pin } from './codec'

/**
 * A signer of the shape of @fastify/cookie's `Signer` (`new Signer(keys)`), or
 * one backed by a key store: `sign` returns the signed text, `unsign` gives it
 * back when the signature holds, with `renew` when a retired key signed it.
 */
export interface CookieSigner {
  sign: (value: string) => string
  unsign: (signed: string) => { valid: boolean, renew: boolean, value: string | null }
}

/** Browsers keep cookies up to 4096 bytes: a longer value is no cookie of ours. */
const MAX_SIGNED_LENGTH = 4096

/**
 * Affinity values signed by the user's signer. What it signs is
 * `<id>.<times>.<cookie name>` (times: see codec.ts): the name binds the value to this pool's
 * cookie, so a value of the app's own signed cookies, or of another pool's
 * cookie with the same signer, is refused. The signer's output is the cookie
 * value as it comes (@fastify/cookie's `Signer` appends `.` and the signature).
 */
export class SignerCodec implements AffinityCodec {
  readonly maxLength = MAX_SIGNED_LENGTH
  private readonly suffix: string

  constructor (cookie: string, private readonly signer: CookieSigner) {
    this.suffix = `.${cookie}`
  }

  encode (id: string, expiry: number, renewed = 0): string {
    return this.signer.sign(payload(id, expiry, renewed) + this.suffix)
  }

  decode (value: string): Pin | null {
    let result
    try {
      result = this.signer.unsign(value)
    } catch {
      // A signer that throws on what a client sent (a malformed value, a key it does not know) has refused it.
      return null
    }
    const text = result.value
    if (result.valid !== true || typeof text !== 'string' || !text.endsWith(this.suffix)) return null
    return readPayload(text.slice(0, -this.suffix.length), result.renew === true)
  }
}
