// Host→guest framing: a message as VDIChunks of ≤ 2048 payload bytes, never two messages in one chunk (spec §1.4, §9).
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, VD_AGENT_MAX_DATA_SIZE } from "./constants.ts"
import { encodeMessageHeader } from "./header.ts"

/** Bytes on the wire for a message of `payloadSize` bytes once chunked. */
export const chunkedSize = (payloadSize: number, maxData = VD_AGENT_MAX_DATA_SIZE): number => {
  const total = MESSAGE_HEADER_SIZE + payloadSize
  return total + Math.ceil(total / maxData) * CHUNK_HEADER_SIZE
}

const putChunkHeader = (out: Uint8Array, at: number, port: number, size: number): void => {
  out[at] = port & 0xff
  out[at + 1] = (port >>> 8) & 0xff
  out[at + 2] = (port >>> 16) & 0xff
  out[at + 3] = (port >>> 24) & 0xff
  out[at + 4] = size & 0xff
  out[at + 5] = (size >>> 8) & 0xff
  out[at + 6] = (size >>> 16) & 0xff
  out[at + 7] = (size >>> 24) & 0xff
}

/** One whole message, chunked, in one buffer (one copy of the payload). */
export const encodeChunkedMessage = (port: number, type: number, payload: Uint8Array, maxData = VD_AGENT_MAX_DATA_SIZE): Uint8Array => {
  const out = new Uint8Array(chunkedSize(payload.length, maxData))
  const chunker = new MessageChunker(port, type, payload.length, maxData)
  const n = chunker.writeInto(payload, out, 0)
  if (n !== out.length || !chunker.done) throw new Error("chunker invariant broken")
  return out
}

/**
 * Streams one message into chunks as its payload arrives in pieces of any size: complete chunks are emitted as soon
 * as their bytes are known, so a relay never has to hold the whole message.
 */
export class MessageChunker {
  private readonly total: number
  /** Message bytes (header + payload) emitted so far. */
  private emitted = 0
  private readonly pending: Uint8Array
  private pendingFill = 0

  constructor(
    readonly port: number,
    readonly type: number,
    readonly payloadSize: number,
    private readonly maxData = VD_AGENT_MAX_DATA_SIZE,
  ) {
    // The first chunk must hold the whole message header: the SPICE server filter and the Windows agent require it.
    if (!Number.isInteger(maxData) || maxData < MESSAGE_HEADER_SIZE) throw new RangeError(`chunk payload size ${maxData} is below ${MESSAGE_HEADER_SIZE}`)
    if (!Number.isInteger(payloadSize) || payloadSize < 0 || payloadSize > 0xffff_ffff) throw new RangeError(`payload size ${payloadSize} is not a u32`)
    this.total = MESSAGE_HEADER_SIZE + payloadSize
    this.pending = new Uint8Array(Math.min(maxData, this.total))
    encodeMessageHeader({ type, size: payloadSize }, this.pending, 0)
    this.pendingFill = MESSAGE_HEADER_SIZE
  }

  get done(): boolean {
    return this.emitted === this.total
  }

  /** Payload bytes still expected. */
  get remaining(): number {
    return this.total - this.emitted - this.pendingFill
  }

  /** Wire bytes that `push(piece)` will return for a piece of `n` bytes. */
  outputSizeFor(n: number): number {
    const after = this.emitted + this.pendingFill + n
    const fullChunksBefore = Math.floor(this.emitted / this.maxData)
    const end = after === this.total ? after : after - (after % this.maxData)
    const chunks = Math.ceil(end / this.maxData) - fullChunksBefore
    return end - this.emitted + chunks * CHUNK_HEADER_SIZE
  }

  /** Add payload bytes; returns the complete chunks they finish (maybe empty). */
  push(piece: Uint8Array): Uint8Array {
    if (piece.length > this.remaining) throw new RangeError(`piece of ${piece.length} bytes exceeds the ${this.remaining} remaining`)
    const out = new Uint8Array(this.outputSizeFor(piece.length))
    const n = this.writeInto(piece, out, 0)
    return n === out.length ? out : out.subarray(0, n)
  }

  /** Writes the chunks `piece` completes into `out` at `at`; returns bytes written. */
  writeInto(piece: Uint8Array, out: Uint8Array, at: number): number {
    let o = at
    let i = 0
    while (true) {
      const chunkLen = Math.min(this.maxData, this.total - this.emitted)
      if (chunkLen === 0) break
      const need = chunkLen - this.pendingFill
      if (piece.length - i < need) {
        // Not enough for a full chunk: keep the rest for later.
        this.pendingBytes(piece.subarray(i))
        i = piece.length
        break
      }
      putChunkHeader(out, o, this.port, chunkLen)
      o += CHUNK_HEADER_SIZE
      if (this.pendingFill > 0) {
        out.set(this.pending.subarray(0, this.pendingFill), o)
        o += this.pendingFill
      }
      out.set(piece.subarray(i, i + need), o)
      o += need
      i += need
      this.emitted += chunkLen
      this.pendingFill = 0
    }
    return o - at
  }

  private pendingBytes(bytes: Uint8Array): void {
    this.pending.set(bytes, this.pendingFill)
    this.pendingFill += bytes.length
  }
}
