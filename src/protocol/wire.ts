// Little-endian field readers and a range-checked writer shared by the payload codecs (no Node Buffer).
import { type Invalid, type InvalidReason, type Parsed, invalid, parsed } from "./decoded.ts"

export const u32At = (b: Uint8Array, at: number): number =>
  (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0
export const i32At = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)
export const u16At = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8)
/** A u64 as a number, or undefined when it exceeds Number.MAX_SAFE_INTEGER. */
export const u64At = (b: Uint8Array, at: number): number | undefined => {
  const hi = u32At(b, at + 4)
  return hi > 0x1fffff ? undefined : hi * 0x1_0000_0000 + u32At(b, at)
}

export const badSize = (type: string, size: number, rule: string): Invalid =>
  invalid("BadSize", 0, `${type} payload of ${size} bytes violates the size rule (${rule})`)

// ignoreBOM: a leading U+FEFF is kept as text, not silently dropped (and workerd's typings require both fields).
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const utf8Encoder = new TextEncoder()
/** Strict UTF-8 decoding; undefined on malformed input (the decoders turn it into BadField). */
export const decodeUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8Decoder.decode(bytes)
  } catch {
    return undefined
  }
}
export const encodeUtf8 = (text: string): Uint8Array => utf8Encoder.encode(text)

/**
 * Writes a payload of a size known up front. Out-of-range values are remembered (the first one wins) rather than
 * silently wrapped, so `result()` reports them as a typed Invalid.
 */
export class Writer {
  readonly out: Uint8Array
  private readonly dv: DataView
  at = 0
  private failure: Invalid | undefined

  constructor(size: number) {
    this.out = new Uint8Array(size)
    this.dv = new DataView(this.out.buffer)
  }

  fail(reason: InvalidReason, detail: string): this {
    this.failure ??= invalid(reason, this.at, detail)
    return this
  }

  private int(n: number, min: number, max: number, name: string): boolean {
    if (Number.isInteger(n) && n >= min && n <= max) return true
    this.fail("BadField", `${name} = ${n} is not an integer in [${min}, ${max}]`)
    return false
  }

  u8(n: number, name: string): this {
    if (this.int(n, 0, 0xff, name)) this.out[this.at] = n
    this.at += 1
    return this
  }
  u16(n: number, name: string): this {
    if (this.int(n, 0, 0xffff, name)) this.dv.setUint16(this.at, n, true)
    this.at += 2
    return this
  }
  u32(n: number, name: string): this {
    if (this.int(n, 0, 0xffff_ffff, name)) this.dv.setUint32(this.at, n, true)
    this.at += 4
    return this
  }
  i32(n: number, name: string): this {
    if (this.int(n, -0x8000_0000, 0x7fff_ffff, name)) this.dv.setInt32(this.at, n, true)
    this.at += 4
    return this
  }
  u64(n: number, name: string): this {
    if (this.int(n, 0, Number.MAX_SAFE_INTEGER, name)) {
      this.dv.setUint32(this.at, n % 0x1_0000_0000, true)
      this.dv.setUint32(this.at + 4, Math.floor(n / 0x1_0000_0000), true)
    }
    this.at += 8
    return this
  }
  bytes(b: Uint8Array): this {
    this.out.set(b, this.at)
    this.at += b.length
    return this
  }
  skip(n: number): this {
    this.at += n
    return this
  }

  result(): Parsed<Uint8Array> {
    if (this.failure !== undefined) return this.failure
    if (this.at !== this.out.length) return invalid("BadField", this.at, `encoder wrote ${this.at} of ${this.out.length} bytes`)
    return parsed(this.out)
  }
}
