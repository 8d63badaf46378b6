// A read cursor over a message held as several byte pieces (as the relay's write frames brought it), so a large
// guest-bound message is never concatenated: chunk headers are peeked across piece edges, bodies handed out as views.

export class PartCursor {
  private idx = 0
  private off = 0
  /** Bytes not consumed yet. */
  remaining: number

  constructor(private readonly parts: ReadonlyArray<Uint8Array>) {
    this.remaining = parts.reduce((n, p) => n + p.length, 0)
  }

  /** Little-endian u32 at `skip` bytes ahead, without consuming; undefined if fewer bytes remain. */
  peekU32(skip: number): number | undefined {
    if (this.remaining < skip + 4) return undefined
    let idx = this.idx
    let off = this.off + skip
    let value = 0
    for (let i = 0; i < 4; i++) {
      while (off >= this.parts[idx]!.length) {
        off -= this.parts[idx]!.length
        idx++
      }
      value += this.parts[idx]![off]! * 2 ** (8 * i)
      off++
    }
    return value
  }

  /** Consumes `n` bytes, returned as views of the pieces (several when the range crosses a piece edge). */
  take(n: number, into: Array<Uint8Array>): void {
    if (n > this.remaining) throw new RangeError(`take(${n}) with ${this.remaining} remaining`)
    this.remaining -= n
    while (n > 0) {
      const part = this.parts[this.idx]!
      const len = Math.min(n, part.length - this.off)
      if (len > 0) into.push(part.subarray(this.off, this.off + len))
      this.off += len
      n -= len
      if (this.off === part.length) {
        this.idx++
        this.off = 0
      }
    }
  }
}

/**
 * Why a guest-bound message's bytes would confuse the agent, or undefined when they are well-formed VDIChunks: every
 * chunk addressed to `port`, 1..maxData bytes, each agent message starting with its whole 20-byte header (the Windows
 * agent needs that), no chunk running past its message's end ("lost sync" in spice-vdagentd) and nothing left over.
 */
export const checkChunking = (parts: ReadonlyArray<Uint8Array>, port: number, maxData: number): string | undefined => {
  const cursor = new PartCursor(parts)
  const sink: Array<Uint8Array> = []
  let messageLeft = 0
  while (cursor.remaining > 0) {
    const p = cursor.peekU32(0)
    const size = cursor.peekU32(4)
    if (p === undefined || size === undefined) return `${cursor.remaining} trailing bytes do not hold a chunk header`
    if (p !== port) return `chunk addressed to port ${p} inside a port ${port} message`
    if (size === 0 || size > maxData) return `chunk size ${size} outside 1..${maxData}`
    if (cursor.remaining < 8 + size) return `chunk of ${size} bytes runs past the end of the data`
    if (messageLeft === 0) {
      if (size < 20) return `chunk of ${size} bytes cannot hold the 20-byte message header`
      if (cursor.peekU32(8) !== 1) return "message header protocol is not 1"
      messageLeft = 20 + cursor.peekU32(8 + 16)!
    }
    if (size > messageLeft) return `chunk of ${size} bytes runs past its message end (${messageLeft} left)`
    messageLeft -= size
    cursor.take(8 + size, sink)
    sink.length = 0
  }
  return messageLeft === 0 ? undefined : `message incomplete: ${messageLeft} bytes missing`
}
