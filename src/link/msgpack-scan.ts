// A structural pre-scan of one msgpack value, run before msgpackr touches the bytes: it refuses msgpack bombs (declared
// lengths past the end of the frame, nesting deeper than our frames ever need), extension types and non-string map keys,
// so that decoding can only allocate in proportion to the frame's size.

/** Why a frame failed the scan; undefined means the bytes are one well-formed value of the allowed shape. */
export type ScanProblem = string | undefined

interface Level {
  remaining: number
  readonly isMap: boolean
}

const isStrHeader = (b: number): boolean => (b >= 0xa0 && b <= 0xbf) || b === 0xd9 || b === 0xda || b === 0xdb

const readLength = (buf: Uint8Array, at: number, bytes: 1 | 2 | 4): number =>
  bytes === 1 ? buf[at]! : bytes === 2 ? (buf[at]! << 8) | buf[at + 1]! : ((buf[at]! << 24) >>> 0) + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!)

/** Bytes of a fixed-size scalar after its type byte, or -1 when `b` is not one. */
const scalarBody = (b: number): number => {
  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return 0
  switch (b) {
    case 0xcc: case 0xd0: return 1
    case 0xcd: case 0xd1: return 2
    case 0xca: case 0xce: case 0xd2: return 4
    case 0xcb: case 0xcf: case 0xd3: return 8
    default: return -1
  }
}

/** Length-prefix size of str/bin types (the body follows), or -1. */
const blobPrefix = (b: number): number => {
  if (b >= 0xa0 && b <= 0xbf) return 0
  switch (b) {
    case 0xc4: case 0xd9: return 1
    case 0xc5: case 0xda: return 2
    case 0xc6: case 0xdb: return 4
    default: return -1
  }
}

/** Container header: [count of items (map entries count twice), length-prefix bytes], or undefined. */
const container = (buf: Uint8Array, at: number, b: number): { readonly items: number; readonly prefix: number; readonly isMap: boolean } | undefined => {
  if (b >= 0x80 && b <= 0x8f) return { items: (b & 0x0f) * 2, prefix: 0, isMap: true }
  if (b >= 0x90 && b <= 0x9f) return { items: b & 0x0f, prefix: 0, isMap: false }
  const prefix = b === 0xdc || b === 0xde ? 2 : b === 0xdd || b === 0xdf ? 4 : 0
  if (prefix === 0 || at + 1 + prefix > buf.length) return undefined
  const n = readLength(buf, at + 1, prefix as 2 | 4)
  const isMap = b === 0xde || b === 0xdf
  return { items: isMap ? n * 2 : n, prefix, isMap }
}

/**
 * Checks that `buf` holds exactly one msgpack map whose nesting is at most `maxDepth` containers, with string keys
 * only, no extension types, and every declared length within the buffer.
 */
export const scanMsgpack = (buf: Uint8Array, maxDepth: number): ScanProblem => {
  if (buf.length === 0) return "empty frame"
  const first = buf[0]!
  if (!((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) return "frame is not a msgpack map"
  const stack: Level[] = [{ remaining: 1, isMap: false }]
  let at = 0
  while (stack.length > 0) {
    const level = stack[stack.length - 1]!
    if (level.remaining === 0) {
      stack.pop()
      continue
    }
    if (at >= buf.length) return "truncated"
    const b = buf[at]!
    if (level.isMap && level.remaining % 2 === 0 && !isStrHeader(b)) return `non-string map key at ${at}`
    level.remaining--
    const fixed = scalarBody(b)
    if (fixed >= 0) {
      at += 1 + fixed
      continue
    }
    const prefix = blobPrefix(b)
    if (prefix >= 0) {
      const len = prefix === 0 ? b & 0x1f : at + 1 + prefix <= buf.length ? readLength(buf, at + 1, prefix as 1 | 2 | 4) : -1
      if (len < 0 || at + 1 + prefix + len > buf.length) return `declared length past the end at ${at}`
      at += 1 + prefix + len
      continue
    }
    const c = container(buf, at, b)
    if (c === undefined) return b === 0xc1 || (b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8) ? `unsupported type 0x${b.toString(16)} at ${at}` : "truncated"
    at += 1 + c.prefix
    // Every item takes at least one byte: a count larger than what is left is a lie (and a bomb).
    if (c.items > buf.length - at) return `declared count past the end at ${at}`
    if (stack.length > maxDepth) return "nested too deep"
    stack.push({ remaining: c.items, isMap: c.isMap })
  }
  return at === buf.length ? undefined : "trailing bytes after the frame"
}
