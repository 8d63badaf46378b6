// Byte-buffer helpers shared by every layer: pure, no Node Buffer, so they run unchanged in workerd and the browser.

/** One new buffer holding `parts` back to back (always a copy, even for a single part). */
export const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** The little-endian u32 at byte `at` of `b` (any view: its byteOffset is honoured). */
export const readU32LE = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true)
