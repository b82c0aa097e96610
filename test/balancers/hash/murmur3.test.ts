import { test } from 'tap'
import { murmur3 } from '../../../lib/balancers/hash/murmur3'
import { seeded } from '../fixtures'

/** Textbook murmur3 x86_32 over a Buffer's bytes: the reference. */
function reference (bytes: Buffer, seed: number): number {
  const c1 = 0xcc9e2d51
  const c2 = 0x1b873593
  let h = seed | 0
  const blocks = bytes.length & ~3
  const scramble = (k: number): number => Math.imul(((Math.imul(k, c1) << 15) | (Math.imul(k, c1) >>> 17)), c2)
  for (let i = 0; i < blocks; i += 4) {
    h ^= scramble(bytes.readInt32LE(i))
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  let k = 0
  for (let i = bytes.length - 1; i >= blocks; i--) k = (k << 8) | bytes[i]
  if (bytes.length > blocks) h ^= scramble(k)
  h ^= bytes.length
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

test('published vectors', async (t) => {
  t.equal(murmur3(''), 0)
  t.equal(murmur3('', 1), 0x514e28b7)
  t.equal(murmur3('', 0xffffffff), 0x81f16f39)
  t.equal(murmur3('hello'), 0x248bfa47)
  t.equal(murmur3('hello', 1), 0xbb4abcad)
  t.equal(murmur3('The quick brown fox jumps over the lazy dog'), 0x2e4ff723)
  t.equal(murmur3('The quick brown fox jumps over the lazy dog', 0x9747b28c), 0x2fa826cd)
})

test('the reference agrees with the published vectors', async (t) => {
  t.equal(reference(Buffer.from('hello'), 0), 0x248bfa47)
  t.equal(reference(Buffer.from('The quick brown fox jumps over the lazy dog'), 0x9747b28c), 0x2fa826cd)
})

test('every tail length and every UTF-8 width matches the byte reference', async (t) => {
  const samples = [
    'a', 'ab', 'abc', 'abcd', 'abcde', 'abcdefg', 'abcdefgh',
    'é', 'aé', 'abé', 'abcé', 'naïve café', // 2-byte
    '日', 'a日本', '日本語テキスト', '€100', // 3-byte
    '😀', 'a😀', 'ab😀', 'abc😀', '𝄞 music', '👩‍👩‍👧', // 4-byte, ZWJ sequences
    '\ud800', 'a\udc00b', '\ud83d', 'x\ud83dy', '\udc00\ud800', // lone surrogates
    '2001:db8::1', '192.168.0.1'
  ]
  for (const s of samples) {
    for (const seed of [0, 1, 0x9747b28c]) {
      t.equal(murmur3(s, seed), reference(Buffer.from(s, 'utf8'), seed), `${JSON.stringify(s)} seed ${seed}`)
    }
  }
})

test('random strings of every code unit match the byte reference', async (t) => {
  const random = seeded(7)
  let mismatches = 0
  for (let i = 0; i < 2000; i++) {
    const units: number[] = []
    const length = Math.floor(random() * 24)
    for (let j = 0; j < length; j++) {
      // Mostly the interesting ranges: ASCII, 2-byte, 3-byte, surrogates.
      const range = [0x80, 0x800, 0x10000][Math.floor(random() * 3)]
      units.push(random() < 0.1 ? 0xd800 + Math.floor(random() * 0x800) : Math.floor(random() * range))
    }
    const s = String.fromCharCode(...units)
    const seed = Math.floor(random() * 0x100000000)
    if (murmur3(s, seed) !== reference(Buffer.from(s, 'utf8'), seed)) mismatches++
  }
  t.equal(mismatches, 0)
})
