// Guest-bound side of one epoch: the relay's chunked `write` pieces buffered per port until a message is complete,
// complete messages handed to the chardev writer in chunk-aligned batches that alternate between ports, and the
// `wrote` position: every message that ends below it was written whole or deliberately discarded.
import { concatBytes } from "../protocol/bytes.ts"
import { checkChunking, PartCursor } from "./part-cursor.ts"
import type { WrittenKeys } from "./written-keys.ts"

/** A client message's idempotence key, from its first `write` (link types). */
export interface MessageKey {
  readonly origin: string
  readonly id: number
}

export type DiscardReason =
  | "aborted" // the relay's `abort`: the sender gave the message up
  | "too-large" // over limits.maxGuestMessageBytes
  | "buffer-full" // over limits.guestBufferBytes: the relay ignored `wrote`
  | "invalid-chunking" // the bytes are not well-formed VDIChunks for the port
  | "invalid-port"
  | "tunnel-lost" // a partial message when the tunnel dropped: the relay re-sends it or tells its sender
  | "port-closed" // the guest closed the port: QEMU would hold the bytes for the next opener
  | "chardev-lost" // the agent connection (epoch) ended
  | "sequence-gap" // the relay skipped positions: whatever was partial cannot be trusted

/**
 * A write frame's byte range. The last piece of a message is settled once the message is written to the chardev or
 * discarded; other pieces are settled on arrival (a message is acknowledged by `wrote` passing its end).
 */
interface Span {
  readonly pos: number
  readonly end: number
  settled: boolean
}

interface GuestMessage {
  readonly port: number
  readonly parts: Array<Uint8Array>
  readonly spans: Array<Span>
  bytes: number
  /** Set once writing started. */
  cursor: PartCursor | undefined
  /** Bytes the chardev took (batches acknowledged by `written`). */
  written: number
  /** Dropped while a batch of it was in flight: that batch's completion must not count it again. */
  dropped: boolean
  key: MessageKey | undefined
}

/** One write to the chardev: whole chunks of one message; `last` when it finishes the message. */
export interface GuestBatch {
  readonly port: number
  readonly bytes: Uint8Array
  readonly message: GuestMessage
  readonly last: boolean
}

export interface GuestLimits {
  readonly maxMessageBytes: number
  readonly bufferBytes: number
  /** Largest chunk payload accepted host→guest (2048: spec §9). */
  readonly maxChunkData: number
}

export interface GuestListener {
  discarded(port: number, reason: DiscardReason, bytes: number, detail: string): void
  /** A message whose key was written whole before: not written again, but counted as written. */
  duplicate?(port: number, key: MessageKey, bytes: number): void
}

const PORTS = [1, 2] as const

interface PortState {
  partial: GuestMessage | undefined
  /** A message over a cap is being skipped until its `end` (or `abort`). */
  skipping: boolean
  readonly ready: Array<GuestMessage>
}

export class GuestAssembler {
  /** Next guest-bound position expected from the relay. */
  recvPos = 0
  /** Guest-bound bytes held in memory (partial + complete, both ports). */
  held = 0
  /** End of the last server-port (2) message written whole: its `wrote` may run ahead of `wrotePos` (link types). */
  serverWritten = 0
  private readonly spans: Array<Span> = []
  private spanHead = 0
  private readonly ports = new Map<number, PortState>(PORTS.map((p) => [p, { partial: undefined, skipping: false, ready: [] }]))
  private lastPort = 2

  constructor(
    private readonly limits: GuestLimits,
    private readonly listener: GuestListener,
    /** Keys written whole, shared by the VM's epochs (the writer owns it). */
    private readonly writtenKeys?: WrittenKeys,
  ) {}

  /** One relay `write` frame (`key` on a message's first). Returns true when it completed a message (the writer has work). */
  receive(pos: number, port: number, data: Uint8Array, end: boolean, key?: MessageKey): boolean {
    if (pos + data.length <= this.recvPos && !(data.length === 0 && pos === this.recvPos)) return false
    if (pos < this.recvPos) {
      data = data.subarray(this.recvPos - pos)
      pos = this.recvPos
    } else if (pos > this.recvPos) {
      this.settleRange(this.recvPos, pos)
      this.discardPartials("sequence-gap", `expected position ${this.recvPos}, got ${pos}`)
    }
    const span: Span = { pos, end: pos + data.length, settled: false }
    this.recvPos = span.end
    this.spans.push(span)
    const state = this.ports.get(port)
    if (state === undefined) {
      span.settled = true
      this.listener.discarded(port, "invalid-port", data.length, `write for port ${port}`)
      return false
    }
    if (state.skipping) {
      span.settled = true
      if (end) state.skipping = false
      return false
    }
    const msg = state.partial ?? { port, parts: [], spans: [], bytes: 0, cursor: undefined, written: 0, dropped: false, key }
    state.partial = msg
    // Only a message's last piece holds `wrote` back: the relay counts a message written once `wrote` passes its end,
    // and bytes of a message still streaming must not hold back MOUSE_STATE or the sender's credit behind it.
    if (end) msg.spans.push(span)
    else span.settled = true
    if (data.length > 0) msg.parts.push(data)
    msg.bytes += data.length
    this.held += data.length
    if (msg.bytes > this.limits.maxMessageBytes || this.held > this.limits.bufferBytes) {
      const reason = msg.bytes > this.limits.maxMessageBytes ? "too-large" : "buffer-full"
      this.dropPartial(state, reason, `${msg.bytes} bytes buffered for port ${port}, ${this.held} in all`)
      state.skipping = !end
      return false
    }
    if (!end) return false
    state.partial = undefined
    const bad = checkChunking(msg.parts, port, this.limits.maxChunkData)
    if (bad !== undefined) {
      this.drop(msg, "invalid-chunking", bad)
      return false
    }
    if (msg.bytes === 0) {
      this.settle(msg)
      return false
    }
    state.ready.push(msg)
    return true
  }

  /** The relay's `abort` for `port`: its partial message will never be completed. */
  abort(port: number): void {
    const state = this.ports.get(port)
    if (state === undefined) return
    state.skipping = false
    this.dropPartial(state, "aborted", `abort for port ${port}`)
  }

  /** Drops every partial message (tunnel lost, sequence gap); complete messages stay and will be written. */
  discardPartials(reason: DiscardReason, detail: string): void {
    for (const state of this.ports.values()) {
      state.skipping = false
      this.dropPartial(state, reason, detail)
    }
  }

  /**
   * Drops everything (guest port closed, chardev gone), skipping the rest of any partial message. A message half
   * written goes too: the opener that read its head is gone (the guest kernel discards what it had not read), and its
   * tail must not reach the next opener, whose parser would lose sync on it.
   */
  discardAll(reason: DiscardReason, detail: string): void {
    for (const state of this.ports.values()) {
      if (state.partial !== undefined) {
        this.dropPartial(state, reason, detail)
        state.skipping = true
      }
      for (const msg of state.ready.splice(0)) this.drop(msg, reason, detail)
    }
  }

  get hasWork(): boolean {
    for (const state of this.ports.values()) if (state.ready.length > 0) return true
    return false
  }

  /**
   * The next write: whole chunks (≥ 1, up to about `maxBytes`) of one message, alternating between ports at chunk
   * boundaries so a small message on one port never waits behind a large one on the other.
   */
  nextBatch(maxBytes: number): GuestBatch | undefined {
    const first = this.lastPort === 1 ? 2 : 1
    for (const port of [first, first === 1 ? 2 : 1]) {
      const msg = this.nextUnwritten(port)
      if (msg === undefined) continue
      this.lastPort = port
      msg.cursor ??= new PartCursor(msg.parts)
      const views: Array<Uint8Array> = []
      let n = 0
      while (msg.cursor.remaining > 0 && (n === 0 || n < maxBytes)) {
        const size = 8 + msg.cursor.chunkHeader()!.size
        msg.cursor.take(size, views)
        n += size
      }
      const last = msg.cursor.remaining === 0
      if (last) this.ports.get(port)!.ready.shift()
      return { port, bytes: views.length === 1 ? views[0]! : concatBytes(views), message: msg, last }
    }
    return undefined
  }

  /** The chardev took `batch`. */
  written(batch: GuestBatch): void {
    if (batch.message.dropped) return
    batch.message.written += batch.bytes.length
    this.held -= batch.bytes.length
    if (!batch.last) return
    const key = batch.message.key
    if (key !== undefined) this.writtenKeys?.add(key.origin, key.id)
    this.settle(batch.message)
    const end = batch.message.spans[batch.message.spans.length - 1]?.end
    if (batch.port === 2 && end !== undefined && end > this.serverWritten) this.serverWritten = end
  }

  /** Every message ending below this position is written whole or discarded; no unfinished message holds it back. */
  get wrotePos(): number {
    while (this.spanHead < this.spans.length && this.spans[this.spanHead]!.settled) this.spanHead++
    if (this.spanHead > 1024) {
      this.spans.splice(0, this.spanHead)
      this.spanHead = 0
    }
    return this.spans[this.spanHead]?.pos ?? this.recvPos
  }

  /**
   * The head of `port`'s ready queue, past messages already written whole under their key (a resend after a relay
   * restart): those are settled as if written now. Checked when a message comes to be written, not when it arrives:
   * its original may still be queued ahead of it then, and is written or dropped before the repeat reaches the head.
   */
  private nextUnwritten(port: number): GuestMessage | undefined {
    const ready = this.ports.get(port)!.ready
    for (;;) {
      const msg = ready[0]
      if (msg === undefined || msg.cursor !== undefined || msg.key === undefined) return msg
      if (this.writtenKeys?.has(msg.key.origin, msg.key.id) !== true) return msg
      ready.shift()
      this.held -= msg.bytes
      this.settle(msg)
      this.listener.duplicate?.(port, msg.key, msg.bytes)
    }
  }

  private settle(msg: GuestMessage): void {
    for (const s of msg.spans) s.settled = true
  }

  private settleRange(pos: number, end: number): void {
    this.spans.push({ pos, end, settled: true })
  }

  private dropPartial(state: PortState, reason: DiscardReason, detail: string): void {
    const msg = state.partial
    state.partial = undefined
    if (msg !== undefined) this.drop(msg, reason, detail)
  }

  private drop(msg: GuestMessage, reason: DiscardReason, detail: string): void {
    this.held -= msg.bytes - msg.written
    msg.dropped = true
    this.settle(msg)
    this.listener.discarded(msg.port, reason, msg.bytes, detail)
  }
}
