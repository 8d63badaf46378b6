// A small seeded PRNG (sfc32) for the fuzzers: every run is reproducible from its seed, and cheap enough to call per byte.

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    this.a = 0x9e3779b9
    this.b = 0x243f6a88
    this.c = 0xb7e15162
    this.d = seed >>> 0
    for (let i = 0; i < 16; i++) this.u32()
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (n <= 1) return 0
    if (n <= 0x1_0000_0000) return Math.floor((this.u32() / 0x1_0000_0000) * n)
    return Math.floor((((this.u32() >>> 5) * 0x400_0000 + (this.u32() >>> 6)) / 2 ** 53) * n)
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p
  }

  pick<T>(items: ReadonlyArray<T>): T {
    return items[this.int(items.length)]!
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff
    return out
  }

  /** Small sizes are far more likely than large ones (log-uniform up to `max`). */
  size(max: number): number {
    const bits = this.int(Math.max(1, Math.ceil(Math.log2(max + 1))) + 1)
    return Math.min(max, this.int(2 ** bits))
  }
}
