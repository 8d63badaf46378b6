// Byte-level mutators (AFL/libFuzzer "havoc" style): bit flips, interesting integers at aligned and unaligned offsets,
// inserted, deleted, duplicated and spliced ranges, truncation. Interesting values are the vdagent edge cases: chunk and
// message caps (2048, 2056), header sizes (8, 20, 28), the u32 extremes a size field can declare (up to 2^32−1).
import type { Rng } from "./rng.ts"

export const INTERESTING_U32: ReadonlyArray<number> = [
  0, 1, 2, 3, 4, 7, 8, 12, 13, 16, 17, 18, 19, 20, 21, 27, 28, 29, 64, 127, 128, 255, 256, 1023, 1024, 2047, 2048, 2049, 2055,
  2056, 2057, 4096, 32767, 32768, 65535, 65536, 65537, 0x10_0000, 0x100_0000, 0x4000_0000, 0x7fff_ffff, 0x8000_0000,
  0xffff_fffe, 0xffff_ffff,
]
const INTERESTING_U8: ReadonlyArray<number> = [0, 1, 2, 3, 0x7f, 0x80, 0xc0, 0xc1, 0xd4, 0xdc, 0xdd, 0xde, 0xdf, 0xff]

const replace = (b: Uint8Array, at: number, piece: Uint8Array): Uint8Array => {
  const out = b.slice()
  out.set(piece.subarray(0, Math.max(0, out.length - at)), at)
  return out
}

const le32 = (v: number): Uint8Array => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff)
const be32 = (v: number): Uint8Array => Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff)

const splice = (b: Uint8Array, at: number, del: number, ins: Uint8Array): Uint8Array => {
  const out = new Uint8Array(b.length - del + ins.length)
  out.set(b.subarray(0, at), 0)
  out.set(ins, at)
  out.set(b.subarray(at + del), at + ins.length)
  return out
}

/** One mutation; `other` is another corpus entry for crossover. */
export const mutateOnce = (rng: Rng, b: Uint8Array, other: Uint8Array | undefined): Uint8Array => {
  const n = b.length
  const pos = (): number => rng.int(n + 1)
  // Struct fields are 4-byte aligned from the start of a chunk; both alignments are tried.
  const aligned = (): number => (rng.chance(0.6) ? rng.int(Math.max(1, n >> 2)) * 4 : rng.int(Math.max(1, n)))
  switch (rng.int(n === 0 ? 3 : 14)) {
    case 0:
      return splice(b, pos(), 0, rng.bytes(rng.size(64)))
    case 1:
      return splice(b, pos(), 0, le32(rng.pick(INTERESTING_U32)))
    case 2:
      return other !== undefined && other.length > 0 ? splice(b, pos(), 0, other.subarray(rng.int(other.length), rng.int(other.length) + rng.size(256))) : b
    case 3: {
      const out = b.slice()
      const i = rng.int(n)
      out[i] = out[i]! ^ (1 << rng.int(8))
      return out
    }
    case 4: {
      const out = b.slice()
      out[rng.int(n)] = rng.pick(INTERESTING_U8)
      return out
    }
    case 5:
      return replace(b, aligned(), le32(rng.pick(INTERESTING_U32)))
    case 6:
      return replace(b, rng.int(n), rng.chance(0.5) ? be32(rng.pick(INTERESTING_U32)) : le32(rng.u32()))
    case 7: {
      const at = rng.int(n)
      return splice(b, at, Math.min(n - at, rng.size(64) + 1), new Uint8Array(0))
    }
    case 8: {
      const at = rng.int(n)
      const len = Math.min(n - at, rng.size(512) + 1)
      return splice(b, pos(), 0, b.slice(at, at + len))
    }
    case 9:
      return b.subarray(0, rng.int(n))
    case 10: {
      const out = b.slice()
      const i = rng.int(n)
      out[i] = (out[i]! + rng.range(-8, 8)) & 0xff
      return out
    }
    case 11: {
      if (other === undefined) return b
      const cut = rng.int(n + 1)
      const from = rng.int(other.length + 1)
      const out = new Uint8Array(cut + other.length - from)
      out.set(b.subarray(0, cut), 0)
      out.set(other.subarray(from), cut)
      return out
    }
    case 12: {
      const out = b.slice()
      const at = aligned()
      const v = (out[at]! | (out[at + 1]! << 8) | (out[at + 2]! << 16) | (out[at + 3]! << 24)) >>> 0
      return replace(out, at, le32(v + rng.range(-4, 4)))
    }
    default: {
      const at = rng.int(n)
      const len = Math.min(n - at, rng.size(64) + 1)
      return replace(b, rng.int(n), b.slice(at, at + len))
    }
  }
}

/** A stack of 1..2^k mutations, clamped to `maxLen`. */
export const havoc = (rng: Rng, b: Uint8Array, other: Uint8Array | undefined, maxLen: number): Uint8Array => {
  let out = b
  const rounds = 1 << rng.int(4)
  for (let i = 0; i < rounds; i++) out = mutateOnce(rng, out, other)
  return out.length > maxLen ? out.subarray(0, maxLen) : out
}
