import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto'
import { pinOf, times, TIMES, TIMES_LENGTH, type AffinityCodec, type Pin } from './codec'

/** 24 bytes are 32 base64url characters without spare bits: each tag has one spelling only. */
const TAG_BYTES = 24
const TAG_CHARS = 32
/** `<target id>.<times>.<tag>` (times: see codec.ts); ids are at most 64 characters. */
const VALUE = new RegExp(`^[A-Za-z0-9._~-]{1,64}\\.${TIMES}\\.[A-Za-z0-9_-]{${TAG_CHARS}}$`)

/**
 * The plugin's own codec: `<id>.<times>.<tag>`, the tag the first 24 bytes of
 * HMAC-SHA256 over the cookie name, times and id. The first key signs, every
 * key verifies; the cookie name is signed too, so a value issued for one
 * cookie is refused under another.
 */
export class HmacCodec implements AffinityCodec {
  readonly maxLength = 64 + 1 + TIMES_LENGTH + 1 + TAG_CHARS

  constructor (private readonly cookie: string, private readonly keys: readonly KeyObject[]) {}

  private tag (key: KeyObject, times: string, id: string): Buffer {
    return createHmac('sha256', key).update(`${this.cookie}\n${times}\n${id}`).digest().subarray(0, TAG_BYTES)
  }

  encode (id: string, expiry: number, renewed = 0): string {
    const exp = times(expiry, renewed)
    return `${id}.${exp}.${this.tag(this.keys[0], exp, id).toString('base64url')}`
  }

  decode (value: string): Pin | null {
    if (!VALUE.test(value)) return null
    const tagAt = value.length - TAG_CHARS
    const expAt = value.lastIndexOf('.', tagAt - 2) + 1
    const exp = value.slice(expAt, tagAt - 1)
    const id = value.slice(0, expAt - 1)
    const given = Buffer.from(value.slice(tagAt), 'base64url')
    const keys = this.keys
    for (let i = 0; i < keys.length; i++) {
      if (timingSafeEqual(this.tag(keys[i], exp, id), given)) return pinOf(id, exp, i > 0)
    }
    return null
  }
}
