// Whole-message assembly on top of StreamParser: each message is delivered whole, its body copied at most once into a
// per-port buffer of exactly header.size bytes (never more than maxMessageSize, checked on the header first).
import type { Invalid } from "./decoded.ts"
import type { MessageHeader } from "./header.ts"
import { type StreamParserOptions, type StreamSink, StreamParser } from "./stream-parser.ts"

export type MessageHandler = (port: number, header: MessageHeader, body: Uint8Array) => void

export interface AssemblerOptions extends StreamParserOptions {
  /**
   * "borrowed" (default): `body` is valid only during the handler call (slice it to keep it); a port's buffer is
   * reused for the next message when it is at most `retainBytes`. "owned": every body is a fresh array the handler
   * may keep (one extra copy for messages that arrived whole in one push).
   */
  readonly bodies?: "borrowed" | "owned"
  /** Largest per-port buffer kept between messages in borrowed mode; larger ones are dropped after delivery. */
  readonly retainBytes?: number
}

/** A port's buffer is kept between messages up to this size by default: two ports ⇒ at most 2 MiB held idle. */
export const DEFAULT_RETAIN_BYTES = 1024 * 1024

interface Slot {
  header: MessageHeader | undefined
  /** Reassembly buffer; its length is the largest message size it held, so never above maxMessageSize. */
  buf: Uint8Array | undefined
  fill: number
}

const NO_HANDLER: MessageHandler = () => {}

/**
 * The StreamSink side of the assembler, a class so that the parser's calls into it stay monomorphic (one shape and
 * one function per call site, whatever the number of assemblers in the process): that keeps the 2048-byte-chunk
 * copy loop near the cost of its copies.
 */
class AssemblingSink implements StreamSink {
  readonly slots: Array<Slot | undefined> = []
  handler: MessageHandler = NO_HANDLER

  constructor(
    ports: ReadonlyArray<number>,
    private readonly owned: boolean,
    private readonly retainBytes: number,
  ) {
    for (const p of ports) this.slots[p] = { header: undefined, buf: undefined, fill: 0 }
  }

  message(port: number, header: MessageHeader, body: Uint8Array): void {
    this.handler(port, header, this.owned ? body.slice() : body)
  }

  start(port: number, header: MessageHeader): void {
    const s = this.slots[port]!
    s.header = header
    s.fill = 0
    // The parser checked header.size ≤ maxMessageSize before this call, so the buffer stays under the cap.
    if (this.owned || s.buf === undefined || s.buf.length < header.size) s.buf = new Uint8Array(header.size)
  }

  data(port: number, bytes: Uint8Array): void {
    const s = this.slots[port]!
    s.buf!.set(bytes, s.fill)
    s.fill += bytes.length
  }

  end(port: number): void {
    const s = this.slots[port]!
    const header = s.header!
    const buf = s.buf!
    const body = buf.length === header.size ? buf : buf.subarray(0, header.size)
    s.header = undefined
    s.fill = 0
    if (this.owned || buf.length > this.retainBytes) s.buf = undefined
    this.handler(port, header, body)
  }

  error(): void {}
}

export class MessageAssembler {
  private readonly parser: StreamParser
  private readonly sink: AssemblingSink

  constructor(options: AssemblerOptions) {
    this.parser = new StreamParser(options)
    this.sink = new AssemblingSink(options.ports ?? [1, 2], options.bodies === "owned", options.retainBytes ?? DEFAULT_RETAIN_BYTES)
  }

  /** Feed bytes; whole messages go to `onMessage` in stream order. Returns bytes consumed, as StreamParser.push. */
  push(buf: Uint8Array, onMessage: MessageHandler): number {
    this.sink.handler = onMessage
    try {
      return this.parser.push(buf, this.sink)
    } finally {
      this.sink.handler = NO_HANDLER
    }
  }

  get error(): Invalid | undefined {
    return this.parser.error
  }

  get position(): number {
    return this.parser.position
  }

  /** True when no port holds part of a message and the parser sits between chunks. */
  get atBoundary(): boolean {
    return this.parser.atBoundary
  }

  /** Bytes held in reassembly buffers right now (what a memory budget should count). */
  get bufferedBytes(): number {
    return this.sink.slots.reduce((n, s) => n + (s?.buf?.length ?? 0), 0)
  }

  /** Forget every partial message and the error (e.g. the agent reconnected). Retained buffers are released. */
  reset(): void {
    this.parser.reset()
    for (const s of this.sink.slots) if (s !== undefined) Object.assign(s, { header: undefined, buf: undefined, fill: 0 })
  }

  /** Forget one port's partial message (e.g. CLIENT_DISCONNECTED resets port 1 only, spec §5.7). */
  resetPort(port: number): void {
    this.parser.resetPort(port)
    const s = this.sink.slots[port]
    if (s !== undefined) Object.assign(s, { header: undefined, fill: 0 })
  }
}
