// Resumable parser of a VDIChunk stream (spec §1.2–1.3): chunks demultiplexed per port, messages reassembled per port,
// over arbitrary splits of the input. Zero-copy: bodies are handed out as views of the input (valid only during the
// sink call); only a header split across pushes is copied, into a small scratch.
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE } from "./constants.ts"
import { type Invalid, type InvalidReason, invalid } from "./decoded.ts"
import * as headers from "./header.ts"
import type { MessageHeader } from "./header.ts"

// The header readers and checks as module-local constants: V8 does not fold an imported binding into a constant, so
// a call through one in the hot loop costs a load and an inlining chance (3-8 % of the parser's time on small
// messages, bench/protocol.bench.ts under Node); a local `const` is folded.
const { chunkPortAt, chunkSizeAt, chunkSizeFault, headerFaultDetail, messageHeaderFault, readMessageHeader } = headers

/**
 * Receives what the parser finds. A message whose header and body arrive in one chunk within one push comes as one
 * `message` call; any other message comes as `start`, zero or more `data`, then `end`. Views are only valid during
 * the call.
 */
export interface StreamSink {
  message(port: number, header: MessageHeader, body: Uint8Array): void
  start(port: number, header: MessageHeader): void
  data(port: number, bytes: Uint8Array): void
  end(port: number): void
  /** The stream cannot be trusted any more; the parser stops until `reset()`. */
  error(error: Invalid): void
}

export interface StreamParserOptions {
  /** Largest chunk accepted; checked on the chunk header before any body is read. */
  readonly maxChunkSize: number
  /** Largest message accepted; checked on the message header before any body is read. */
  readonly maxMessageSize: number
  /**
   * Ports accepted. The guest agent addresses its chunks to port 1 (client) or 2 (server); anything else is
   * garbage (the SPICE server removes the agent on it, spec §5.3).
   */
  readonly ports?: ReadonlyArray<number>
}

interface PortState {
  /** Bytes of the message header gathered so far (0..20) when it is split. */
  headerFill: number
  readonly headerScratch: Uint8Array
  /** Stream position of the first byte of a split message header (for errors). */
  headerAt: number
  header: MessageHeader | undefined
  /** Body bytes still expected for the current message. */
  remaining: number
}

const newPort = (): PortState => ({ headerFill: 0, headerScratch: new Uint8Array(MESSAGE_HEADER_SIZE), headerAt: 0, header: undefined, remaining: 0 })

export class StreamParser {
  private readonly ports: Array<PortState | undefined> = []
  private readonly maxChunkSize: number
  private readonly maxMessageSize: number
  private readonly chunkScratch = new Uint8Array(CHUNK_HEADER_SIZE)
  private chunkFill = 0
  private chunkPort = 0
  /** Payload bytes of the current chunk still to come (0 = expecting a chunk header). */
  private chunkRemaining = 0
  /** Stream position of the current chunk's header. */
  private chunkAt = 0
  private failed: Invalid | undefined
  /** Bytes consumed since creation or the last reset: a stream position for errors and resume. */
  position = 0

  constructor(options: StreamParserOptions) {
    this.maxChunkSize = options.maxChunkSize
    this.maxMessageSize = options.maxMessageSize
    for (const p of options.ports ?? [1, 2]) this.ports[p] = newPort()
  }

  get error(): Invalid | undefined {
    return this.failed
  }

  /** True when the parser sits between chunks and no port holds part of a message. */
  get atBoundary(): boolean {
    if (this.chunkFill !== 0 || this.chunkRemaining !== 0) return false
    return this.ports.every((p) => p === undefined || (p.headerFill === 0 && p.header === undefined))
  }

  /** Ports that hold part of a message (header or body) right now. */
  partialPorts(): number[] {
    const out: number[] = []
    this.ports.forEach((p, port) => {
      if (p !== undefined && (p.headerFill !== 0 || p.header !== undefined)) out.push(port)
    })
    return out
  }

  /** Forget everything: chunk state, every port's partial message, the error. `position` keeps counting. */
  reset(): void {
    this.chunkFill = 0
    this.chunkRemaining = 0
    this.failed = undefined
    for (let i = 0; i < this.ports.length; i++) if (this.ports[i] !== undefined) this.ports[i] = newPort()
  }

  /**
   * Forget one port's partial message (the SPICE server does this per side, spec §5.5). Call it between chunks:
   * a chunk in progress for that port would otherwise continue into the fresh state.
   */
  resetPort(port: number): void {
    if (this.ports[port] !== undefined) this.ports[port] = newPort()
  }

  /**
   * Feed bytes; returns how many were consumed: all of them, unless an error stopped the parser, in which case the
   * count is the offset in `buf` where the offending chunk starts (0 if it started in an earlier push), the place to
   * resynchronise from.
   */
  push(buf: Uint8Array, sink: StreamSink): number {
    if (this.failed !== undefined) return 0
    let at = 0
    const len = buf.length
    const ab = buf.buffer
    const base = buf.byteOffset
    while (at < len) {
      if (this.chunkRemaining === 0) {
        // Chunk header, possibly split across pushes.
        let h: Uint8Array = buf
        let ho = at
        if (this.chunkFill > 0 || len - at < CHUNK_HEADER_SIZE) {
          if (this.chunkFill === 0) this.chunkAt = this.position + at
          const take = Math.min(CHUNK_HEADER_SIZE - this.chunkFill, len - at)
          for (let i = 0; i < take; i++) this.chunkScratch[this.chunkFill + i] = buf[at + i]!
          this.chunkFill += take
          at += take
          if (this.chunkFill < CHUNK_HEADER_SIZE) break
          h = this.chunkScratch
          ho = 0
        } else {
          this.chunkAt = this.position + at
          at += CHUNK_HEADER_SIZE
        }
        this.chunkFill = 0
        const port = chunkPortAt(h, ho)
        const size = chunkSizeAt(h, ho)
        const p = this.ports[port]
        if (p === undefined) return this.fail(sink, "UnknownPort", this.chunkAt, `chunk for port ${port}`)
        const tooLarge = chunkSizeFault(size, this.maxChunkSize)
        if (tooLarge !== undefined) return this.fail(sink, tooLarge, this.chunkAt, headerFaultDetail(tooLarge, size, this.maxChunkSize))
        if (p.header !== undefined && size > p.remaining)
          return this.fail(sink, "ChunkPastMessageEnd", this.chunkAt, `chunk of ${size} bytes, the message on port ${port} needs ${p.remaining} (lost sync)`)
        this.chunkPort = port
        this.chunkRemaining = size
        continue
      }
      const port = this.chunkPort
      const p = this.ports[port]!
      if (p.header === undefined) {
        // Message header, possibly split across chunks and pushes.
        const avail = Math.min(this.chunkRemaining, len - at)
        let header: MessageHeader
        let hAt: number
        if (p.headerFill === 0 && avail >= MESSAGE_HEADER_SIZE) {
          header = readMessageHeader(buf, at)
          hAt = this.position + at
          at += MESSAGE_HEADER_SIZE
          this.chunkRemaining -= MESSAGE_HEADER_SIZE
        } else {
          if (p.headerFill === 0) p.headerAt = this.position + at
          const take = Math.min(MESSAGE_HEADER_SIZE - p.headerFill, avail)
          for (let i = 0; i < take; i++) p.headerScratch[p.headerFill + i] = buf[at + i]!
          p.headerFill += take
          at += take
          this.chunkRemaining -= take
          if (p.headerFill < MESSAGE_HEADER_SIZE) continue
          header = readMessageHeader(p.headerScratch, 0)
          hAt = p.headerAt
          p.headerFill = 0
        }
        const bad = messageHeaderFault(header, this.maxMessageSize)
        if (bad !== undefined) return this.fail(sink, bad, hAt, headerFaultDetail(bad, header, this.maxMessageSize))
        if (this.chunkRemaining > header.size)
          return this.fail(sink, "ChunkPastMessageEnd", hAt, `chunk carries ${this.chunkRemaining} bytes past a ${header.size}-byte message (lost sync)`)
        // Fast path: the whole body is in this chunk and this push.
        if (this.chunkRemaining === header.size && len - at >= header.size) {
          const body = new Uint8Array(ab, base + at, header.size)
          at += header.size
          this.chunkRemaining = 0
          sink.message(port, header, body)
          continue
        }
        p.header = header
        p.remaining = header.size
        sink.start(port, header)
        continue
      }
      // Body bytes of a streamed message (the chunk header check guarantees chunkRemaining ≤ remaining). The loop
      // runs on through the message's next chunks while their headers are whole here and plainly valid: that is the
      // 2048-byte-chunk hot path; anything else goes back to the general path above, unconsumed.
      let chunkLeft = this.chunkRemaining
      let msgLeft = p.remaining
      for (;;) {
        const take = chunkLeft < len - at ? chunkLeft : len - at
        if (take > 0) sink.data(port, new Uint8Array(ab, base + at, take))
        at += take
        chunkLeft -= take
        msgLeft -= take
        if (msgLeft === 0 || chunkLeft !== 0 || len - at < CHUNK_HEADER_SIZE) break
        const size = chunkSizeAt(buf, at)
        if (chunkPortAt(buf, at) !== port || size > msgLeft || size > this.maxChunkSize) break
        // chunkAt is not updated: errors are only found on chunk and message headers of the general path.
        at += CHUNK_HEADER_SIZE
        chunkLeft = size
      }
      this.chunkRemaining = chunkLeft
      p.remaining = msgLeft
      if (msgLeft === 0) {
        p.header = undefined
        sink.end(port)
      }
    }
    this.position += at
    return at
  }

  private fail(sink: StreamSink, reason: InvalidReason, at: number, detail: string): number {
    this.failed = invalid(reason, at, detail)
    const consumed = Math.max(0, this.chunkAt - this.position)
    this.position += consumed
    sink.error(this.failed)
    return consumed
  }
}
