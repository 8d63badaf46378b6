// Reads a fuzz input as a program (libFuzzer's FuzzedDataProvider idea): byte mutations then mutate the program, and
// ProgramWriter lays a structure-aware program out in the same encoding so generated inputs and mutants share a form.

export class Provider {
  private at = 0

  constructor(private readonly buf: Uint8Array) {}

  get left(): number {
    return this.buf.length - this.at
  }

  get done(): boolean {
    return this.at >= this.buf.length
  }

  u8(): number {
    return this.at < this.buf.length ? this.buf[this.at++]! : 0
  }

  u16(): number {
    return this.u8() | (this.u8() << 8)
  }

  u32(): number {
    return (this.u8() | (this.u8() << 8) | (this.u8() << 16) | (this.u8() << 24)) >>> 0
  }

  bool(): boolean {
    return (this.u8() & 1) === 1
  }

  /** An integer in [0, n) from one or two bytes. */
  below(n: number): number {
    return n <= 256 ? this.u8() % n : this.u16() % n
  }

  /** Bytes with a u16 length prefix (clamped to what is left). */
  bytes(): Uint8Array {
    const n = Math.min(this.u16(), this.left)
    const out = this.buf.subarray(this.at, this.at + n)
    this.at += n
    return out
  }

  /** The next `n` bytes (fewer at the end). */
  take(n: number): Uint8Array {
    const out = this.buf.subarray(this.at, this.at + n)
    this.at += out.length
    return out
  }

  rest(): Uint8Array {
    const out = this.buf.subarray(this.at)
    this.at = this.buf.length
    return out
  }
}

export class ProgramWriter {
  private parts: number[] = []
  private blobs: Array<{ at: number; bytes: Uint8Array }> = []

  u8(v: number): this {
    this.parts.push(v & 0xff)
    return this
  }

  u16(v: number): this {
    return this.u8(v).u8(v >>> 8)
  }

  u32(v: number): this {
    return this.u8(v).u8(v >>> 8).u8(v >>> 16).u8(v >>> 24)
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0)
  }

  bytes(b: Uint8Array): this {
    const n = Math.min(b.length, 0xffff)
    this.u16(n)
    this.blobs.push({ at: this.parts.length, bytes: b.subarray(0, n) })
    for (let i = 0; i < n; i++) this.parts.push(0)
    return this
  }

  finish(): Uint8Array {
    const out = Uint8Array.from(this.parts)
    for (const b of this.blobs) out.set(b.bytes, b.at)
    return out
  }
}
