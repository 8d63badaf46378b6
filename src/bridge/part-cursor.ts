// A read cursor over a message held as several byte pieces (as the relay's write frames brought it), so a large
// guest-bound message is never concatenated: chunk headers are peeked across piece edges (read by the protocol
// library's header readers), bodies handed out as views.
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, VD_AGENT_PROTOCOL } from "../protocol/constants.ts"
import { type ChunkHeader, type MessageHeader, readChunkHeader, readMessageHeader } from "../protocol/header.ts"

export class PartCursor {
  private idx = 0
  private off = 0
  /** Bytes not consumed yet. */
  remaining: number

  constructor(private readonly parts: ReadonlyArray<Uint8Array>) {
    this.remaining = parts.reduce((n, p) => n + p.length, 0)
  }

  private readonly scratch = new Uint8Array(MESSAGE_HEADER_SIZE)
  /** Offset of the bytes `ahead` returned, in the array it returned. */
  private aheadAt = 0

  /**
   * `n` (≤ MESSAGE_HEADER_SIZE) bytes at `skip` ahead, without consuming: a view of the piece that holds them all,
   * else a copy into a scratch; undefined if fewer bytes remain. They start at `aheadAt` in the returned array.
   */
  private ahead(skip: number, n: number): Uint8Array | undefined {
    if (this.remaining < skip + n) return undefined
    let idx = this.idx
    let off = this.off + skip
    while (off >= this.parts[idx]!.length) {
      off -= this.parts[idx]!.length
      idx++
    }
    const part = this.parts[idx]!
    if (off + n <= part.length) {
      this.aheadAt = off
      return part
    }
    for (let i = 0; i < n; i++) {
      while (off >= this.parts[idx]!.length) {
        off -= this.parts[idx]!.length
        idx++
      }
      this.scratch[i] = this.parts[idx]![off++]!
    }
    this.aheadAt = 0
    return this.scratch
  }

  /** The chunk header at the cursor, without consuming; undefined if fewer than its 8 bytes remain. */
  chunkHeader(): ChunkHeader | undefined {
    const b = this.ahead(0, CHUNK_HEADER_SIZE)
    return b === undefined ? undefined : readChunkHeader(b, this.aheadAt)
  }

  /** The message header right after the chunk header at the cursor; undefined if its 20 bytes are not there. */
  messageHeader(): MessageHeader | undefined {
    const b = this.ahead(CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE)
    return b === undefined ? undefined : readMessageHeader(b, this.aheadAt)
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
    const chunk = cursor.chunkHeader()
    if (chunk === undefined) return `${cursor.remaining} trailing bytes do not hold a chunk header`
    const { port: p, size } = chunk
    if (p !== port) return `chunk addressed to port ${p} inside a port ${port} message`
    if (size === 0 || size > maxData) return `chunk size ${size} outside 1..${maxData}`
    if (cursor.remaining < CHUNK_HEADER_SIZE + size) return `chunk of ${size} bytes runs past the end of the data`
    if (messageLeft === 0) {
      if (size < MESSAGE_HEADER_SIZE) return `chunk of ${size} bytes cannot hold the 20-byte message header`
      const m = cursor.messageHeader()!
      if (m.protocol !== VD_AGENT_PROTOCOL) return "message header protocol is not 1"
      messageLeft = MESSAGE_HEADER_SIZE + m.size
    }
    if (size > messageLeft) return `chunk of ${size} bytes runs past its message end (${messageLeft} left)`
    messageLeft -= size
    cursor.take(CHUNK_HEADER_SIZE + size, sink)
    sink.length = 0
  }
  return messageLeft === 0 ? undefined : `message incomplete: ${messageLeft} bytes missing`
}
