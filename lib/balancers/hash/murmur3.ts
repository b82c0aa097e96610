const C1 = 0xcc9e2d51
const C2 = 0x1b873593

function scramble (k: number): number {
  k = Math.imul(k, C1)
  k = (k << 15) | (k >>> 17)
  return Math.imul(k, C2)
}

function mixBlock (h: number, k: number): number {
  h ^= scramble(k)
  h = (h << 13) | (h >>> 19)
  return (Math.imul(h, 5) + 0xe6546b64) | 0
}

/**
 * Where murmur3ToSlot() leaves its result. A function that returns a 32-bit
 * unsigned number makes V8 box it in a fresh heap number whenever the value is
 * not a small integer and the call is not inlined; the hot path reads the
 * hash from here instead, so hashing a request allocates nothing.
 */
export const HASH_SLOT = new Uint32Array(1)

/** MurmurHash3 x86_32 of the UTF-8 bytes of `str`, as an unsigned 32-bit integer. */
export function murmur3 (str: string, seed = 0): number {
  murmur3ToSlot(str, seed)
  return HASH_SLOT[0]
}

/**
 * murmur3() into HASH_SLOT[0]: read it before hashing anything else.
 *
 * It runs on every hashed request, so it encodes UTF-8 on the fly from
 * charCodeAt instead of allocating a Buffer. Lone surrogates hash as U+FFFD,
 * which is what Buffer.from(str, 'utf8') produces, so results match a
 * byte-based implementation for every string.
 */
export function murmur3ToSlot (str: string, seed: number): void {
  let h = seed | 0
  // The 4-byte block being filled, little-endian, and where its next byte goes.
  let k = 0
  let shift = 0
  let length = 0
  const n = str.length
  for (let i = 0; i < n; i++) {
    // Four ASCII characters on a block boundary make a block as they are: most
    // keys (ids, addresses, session tokens) go this way, a block per step.
    if (shift === 0 && i + 3 < n) {
      const c0 = str.charCodeAt(i)
      const c1 = str.charCodeAt(i + 1)
      const c2 = str.charCodeAt(i + 2)
      const c3 = str.charCodeAt(i + 3)
      if ((c0 | c1 | c2 | c3) < 0x80) {
        h = mixBlock(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24))
        length += 4
        i += 3
        continue
      }
    }
    let c = str.charCodeAt(i)
    // Up to four UTF-8 bytes packed little-endian, so one loop feeds them all.
    let bytes: number
    let count: number
    if (c < 0x80) {
      bytes = c
      count = 1
    } else if (c < 0x800) {
      bytes = (0xc0 | (c >> 6)) | ((0x80 | (c & 0x3f)) << 8)
      count = 2
    } else {
      const d = i + 1 < n ? str.charCodeAt(i + 1) : 0
      if (c >= 0xd800 && c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
        bytes = (0xf0 | (cp >> 18)) | ((0x80 | ((cp >> 12) & 0x3f)) << 8) |
          ((0x80 | ((cp >> 6) & 0x3f)) << 16) | ((0x80 | (cp & 0x3f)) << 24)
        count = 4
      } else {
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd
        bytes = (0xe0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16)
        count = 3
      }
    }
    length += count
    for (; count > 0; count--) {
      k |= (bytes & 0xff) << shift
      bytes >>>= 8
      shift += 8
      if (shift === 32) {
        h = mixBlock(h, k)
        k = 0
        shift = 0
      }
    }
  }
  if (shift !== 0) h ^= scramble(k)
  h ^= length
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  HASH_SLOT[0] = h
}
