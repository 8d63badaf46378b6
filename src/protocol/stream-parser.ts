// Resumable parser of a VDIChunk stream (spec §1.2–1.3): chunks demultiplexed per port, messages reassembled per port,
// over arbitrary splits of the input. Zero-copy: bodies are handed out as views of the input (valid only during the
// sink call); only a header split across pushes is copied, into a 20-byte scratch.
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, VD_AGENT_PROTOCOL } from "./constants.ts"
import { type Invalid, invalid } from "./decoded.ts"
import type { MessageHeader } from "./header.ts"

/**
 * Receives what the parser finds. A message that lies whole inside one push arrives as one `message` call; any other
 * message arrives as `start`, one or more `data`, then `end`. Views are only valid during the call.
 */
export interface StreamSink {
  message(port: number, header: MessageHeader, body: Uint8Array): void
  start(port: number, header: MessageHeader): void
  data(port: number, bytes: Uint8Array): void
  end(port: number): void
  /** The stream cannot be trusted any more; the parser stops until `reset()` or `resync`. */
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
  /** Bytes of the message header gathered so far (0..20). */
  headerFill: number
  readonly headerScratch: Uint8Array
  header: MessageHeader | undefined
  /** Body bytes still expected for the current message. */
  remaining: number
  /** Whether `start` was emitted for the current message (it is streamed). */
  streaming: boolean
}

const newPort = (): PortState => ({ headerFill: 0, headerScratch: new Uint8Array(MESSAGE_HEADER_SIZE), header: undefined, remaining: 0, streaming: false })

const readHeader = (buf: Uint8Array, at: number): MessageHeader => {
  const v = new DataView(buf.buffer, buf.byteOffset + at, MESSAGE_HEADER_SIZE)
  return {
    protocol: v.getUint32(0, true),
    type: v.getUint32(4, true),
    opaqueLo: v.getUint32(8, true),
    opaqueHi: v.getUint32(12, true),
    size: v.getUint32(16, true),
  }
}

export class StreamParser {
  private readonly ports: Array<PortState | undefined> = []
  private readonly chunkScratch = new Uint8Array(CHUNK_HEADER_SIZE)
  private chunkFill = 0
  private chunkPort = 0
  /** Payload bytes of the current chunk still to come (0 = expecting a chunk header). */
  private chunkRemaining = 0
  private failed: Invalid | undefined
  /** Bytes consumed since creation or the last reset: a stream position for errors and resume. */
  position = 0

  constructor(private readonly options: StreamParserOptions) {
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

  /** Forget everything: chunk state and every port's partial message. */
  reset(): void {
    this.chunkFill = 0
    this.chunkRemaining = 0
    this.failed = undefined
    for (let i = 0; i < this.ports.length; i++) if (this.ports[i] !== undefined) this.ports[i] = newPort()
  }

  /** Forget one port's partial message (the SPICE server does this per side, spec §5.5). */
  resetPort(port: number): void {
    if (this.ports[port] !== undefined) this.ports[port] = newPort()
  }

  /** Feed bytes; returns how many were consumed (all of them unless an error stopped the parser). */
  push(buf: Uint8Array, sink: StreamSink): number {
    if (this.failed !== undefined) return 0
    let at = 0
    const len = buf.length
    while (at < len) {
      if (this.chunkRemaining === 0) {
        // Chunk header, possibly split across pushes.
        let h: Uint8Array = buf
        let ho = at
        if (this.chunkFill > 0 || len - at < CHUNK_HEADER_SIZE) {
          const take = Math.min(CHUNK_HEADER_SIZE - this.chunkFill, len - at)
          this.chunkScratch.set(buf.subarray(at, at + take), this.chunkFill)
          this.chunkFill += take
          at += take
          if (this.chunkFill < CHUNK_HEADER_SIZE) break
          h = this.chunkScratch
          ho = 0
        } else {
          at += CHUNK_HEADER_SIZE
        }
        this.chunkFill = 0
        const port = h[ho]! | (h[ho + 1]! << 8) | (h[ho + 2]! << 16) | (h[ho + 3]! << 24)
        const size = (h[ho + 4]! | (h[ho + 5]! << 8) | (h[ho + 6]! << 16) | (h[ho + 7]! << 24)) >>> 0
        const start = at - CHUNK_HEADER_SIZE
        if (port < 0 || this.ports[port] === undefined)
          return this.fail(sink, invalid("UnknownPort", start, `chunk for port ${port >>> 0}`), start)
        if (size > this.options.maxChunkSize)
          return this.fail(sink, invalid("ChunkTooLarge", start, `chunk size ${size} exceeds the cap ${this.options.maxChunkSize}`), start)
        this.chunkPort = port
        this.chunkRemaining = size
        continue
      }
      const p = this.ports[this.chunkPort]!
      if (p.header === undefined) {
        // Message header, possibly split across chunks and pushes.
        const avail = Math.min(this.chunkRemaining, len - at)
        let header: MessageHeader
        if (p.headerFill === 0 && avail >= MESSAGE_HEADER_SIZE) {
          header = readHeader(buf, at)
          at += MESSAGE_HEADER_SIZE
          this.chunkRemaining -= MESSAGE_HEADER_SIZE
        } else {
          const take = Math.min(MESSAGE_HEADER_SIZE - p.headerFill, avail)
          p.headerScratch.set(buf.subarray(at, at + take), p.headerFill)
          p.headerFill += take
          at += take
          this.chunkRemaining -= take
          if (p.headerFill < MESSAGE_HEADER_SIZE) continue
          header = readHeader(p.headerScratch, 0)
          p.headerFill = 0
        }
        const hAt = at - MESSAGE_HEADER_SIZE
        if (header.protocol !== VD_AGENT_PROTOCOL)
          return this.fail(sink, invalid("BadProtocol", hAt, `message protocol ${header.protocol}`), at)
        if (header.size > this.options.maxMessageSize)
          return this.fail(sink, invalid("MessageTooLarge", hAt, `message size ${header.size} exceeds the cap ${this.options.maxMessageSize}`), at)
        if (this.chunkRemaining > header.size)
          return this.fail(sink, invalid("ChunkPastMessageEnd", hAt, `chunk carries ${this.chunkRemaining} bytes past a ${header.size}-byte message (lost sync)`), at)
        const port = this.chunkPort
        // Fast path: the whole body is here.
        if (len - at >= header.size && this.chunkRemaining === header.size) {
          const body = buf.subarray(at, at + header.size)
          at += header.size
          this.chunkRemaining = 0
          sink.message(port, header, body)
          continue
        }
        p.header = header
        p.remaining = header.size
        p.streaming = true
        sink.start(port, header)
        if (header.size === 0) this.finish(p, port, sink)
        continue
      }
      // Body bytes of a streamed message.
      if (this.chunkRemaining > p.remaining)
        return this.fail(sink, invalid("ChunkPastMessageEnd", at, `chunk carries ${this.chunkRemaining} bytes, message needs ${p.remaining} (lost sync)`), at)
      const take = Math.min(this.chunkRemaining, len - at)
      if (take > 0) sink.data(this.chunkPort, buf.subarray(at, at + take))
      at += take
      this.chunkRemaining -= take
      p.remaining -= take
      if (p.remaining === 0) this.finish(p, this.chunkPort, sink)
    }
    this.position += at
    return at
  }

  private finish(p: PortState, port: number, sink: StreamSink): void {
    p.header = undefined
    p.streaming = false
    p.remaining = 0
    sink.end(port)
  }

  private fail(sink: StreamSink, error: Invalid, consumed: number): number {
    this.failed = { ...error, at: this.position + error.at }
    this.position += consumed
    sink.error(this.failed)
    return consumed
  }
}
