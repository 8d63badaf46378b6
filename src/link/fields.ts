// Field readers for decoded link frames: each checks one field's type and range and records the first problem instead of
// throwing, so a frame decoder reads all its fields straight through and then asks whether any was bad.

export const U32_MAX = 0xffff_ffff
/** Longest free-text field (detail, client and bridge names, session and resume ids). */
export const MAX_TEXT = 1024
/** Most capability words accepted (VD_AGENT caps are a handful of 32-bit words). */
export const MAX_CAP_WORDS = 32

export class Fields {
  problem: string | undefined

  constructor(
    private readonly o: Readonly<Record<string, unknown>>,
    private readonly path = "",
  ) {}

  private fail<T>(name: string, why: string, placeholder: T): T {
    this.problem ??= `${this.path}${name}: ${why}`
    return placeholder
  }

  has(name: string): boolean {
    return this.o[name] !== undefined && this.o[name] !== null
  }

  /** A non-negative safe integer no larger than `max`. */
  uint(name: string, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.o[name]
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return this.fail(name, "not a non-negative integer", 0)
    return v > max ? this.fail(name, `over ${max}`, 0) : v
  }

  u32(name: string): number {
    return this.uint(name, U32_MAX)
  }

  bool(name: string): boolean {
    const v = this.o[name]
    return typeof v === "boolean" ? v : this.fail(name, "not a boolean", false)
  }

  str(name: string, maxLength = MAX_TEXT): string {
    const v = this.o[name]
    if (typeof v !== "string") return this.fail(name, "not a string", "")
    return v.length > maxLength ? this.fail(name, `longer than ${maxLength}`, "") : v
  }

  /** Binary data as a plain Uint8Array view (msgpackr yields a Node Buffer on Node). */
  bin(name: string, maxBytes: number): Uint8Array {
    const v = this.o[name]
    if (!(v instanceof Uint8Array)) return this.fail(name, "not binary", new Uint8Array(0))
    if (v.byteLength > maxBytes) return this.fail(name, `over ${maxBytes} bytes`, new Uint8Array(0))
    return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
  }

  oneOf<T extends string>(name: string, values: ReadonlyArray<T>): T {
    const v = this.o[name]
    return typeof v === "string" && (values as ReadonlyArray<string>).includes(v) ? (v as T) : this.fail(name, "not an allowed value", values[0]!)
  }

  caps(name: string): number[] {
    const v = this.o[name]
    if (!Array.isArray(v) || v.length > MAX_CAP_WORDS) return this.fail(name, `not an array of at most ${MAX_CAP_WORDS} words`, [])
    for (const w of v) if (typeof w !== "number" || !Number.isInteger(w) || w < 0 || w > U32_MAX) return this.fail(name, "word not a uint32", [])
    return v as number[]
  }

  capsOrNull(name: string): number[] | null {
    return this.o[name] === null ? null : this.caps(name)
  }

  /** A nested map, read with its own Fields (problems are reported with a dotted path). */
  object<T>(name: string, read: (f: Fields) => T): T {
    const v = this.o[name]
    const inner = new Fields(typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as Record<string, unknown>) : {}, `${this.path}${name}.`)
    if (inner.o !== v) inner.problem = `${this.path}${name}: not a map`
    const value = read(inner)
    if (inner.problem !== undefined) this.problem ??= inner.problem
    return value
  }

  /** Reads an optional field: absent (or nil) yields undefined and no problem. */
  optional<T>(name: string, read: (name: string) => T): T | undefined {
    return this.has(name) ? read(name) : undefined
  }
}
