// The guest-bound half of a VM's bridge state: one assembler per epoch, the chardev writer (one chunk-aligned batch
// in flight, so the socket's backpressure paces it), port gating, and the `wrote` acknowledgements.
import type { BridgeToRelay, PortLevel } from "../link/types.ts"
import { MessageType } from "../protocol/constants.ts"
import type { Limits } from "./config.ts"
import { type DiscardReason, GuestAssembler, type MessageKey } from "./guest-assembler.ts"
import type { Logger } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import type { ChardevPort } from "./ports.ts"
import { WrittenKeys } from "./written-keys.ts"

/** The message type of a batch that starts a message: byte 12 (after the 8-byte chunk header and the protocol). */
const readU32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0

/**
 * Chunk-aligned writes of up to this size alternate between ports: bounds how long a MOUSE_STATE can wait. It is the
 * wire size of the largest store-and-forward message (66 KiB in 33 chunks), so every message but a streamed CLIPBOARD
 * goes to the socket in one write, and an idle writer never leaves part of a message there (spec §12: what the socket
 * holds at a guest close reaches the next opener unless the bridge hangs up first).
 */
const WRITE_BATCH = 33 * (8 + 2048)

/**
 * Pointer-only progress is acknowledged in batches: one `wrote` per this many MOUSE_STATE writes, or WROTE_IDLE_MS
 * after the last one, instead of one per move (each is a Durable Object request). Any other progress (a client
 * message written whole, an abort, a discard) is acknowledged at once and carries the pointer's with it. The relay
 * keeps MOUSE_IN_FLIGHT (64) pointer messages unconfirmed, so a batch of 32 never holds the pointer back.
 */
const WROTE_EVERY_MICE = 32
const WROTE_IDLE_MS = 250

/** What the writer needs from the rest of the VM's state. */
export interface GuestHost {
  readonly epoch: number
  readonly port: PortLevel
  readonly chardev: ChardevPort | undefined
  /** Sends `frame` on the tunnel if it is synced (else the next hello carries the state). */
  sendIfSynced(frame: BridgeToRelay): void
  /** Buffered bytes changed (for the gauge). */
  changed(): void
}

export class GuestWriter {
  private assembler: GuestAssembler
  private writing = false
  private lastWrote = 0
  private lastServer = 0
  /** Since the last `wrote`, only MOUSE_STATE messages were written (so it may wait: WROTE_EVERY_MICE). */
  private mouseOnly = true
  private deferredMice = 0
  private wroteTimer: ReturnType<typeof setTimeout> | undefined
  private readonly labels: Record<string, string>
  /** Client messages written whole, across epochs: a resend of one is not written again. */
  private readonly writtenKeys = new WrittenKeys()

  constructor(
    vm: string,
    private readonly limits: Limits,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly host: GuestHost,
  ) {
    this.labels = { vm }
    this.assembler = this.newAssembler()
  }

  /** Guest-bound bytes held (partial and complete messages). */
  get held(): number {
    return this.assembler.held
  }

  /** Position of everything received: complete messages are committed, partial ones were dropped with the tunnel. */
  get committed(): number {
    return this.assembler.recvPos
  }

  /** A new epoch (or none): positions restart at 0; what the old chardev connection had pending is dropped. */
  reset(cause: string | undefined): void {
    if (cause !== undefined) this.assembler.discardAll("chardev-lost", cause)
    this.assembler = this.newAssembler()
    this.writing = false
    this.lastWrote = 0
    this.lastServer = 0
    this.settledNow()
  }

  /** A hello announced `committed`: live acknowledgements continue above it. */
  helloSent(): void {
    this.lastWrote = this.assembler.recvPos
  }

  tunnelLost(cause: string): void {
    this.assembler.discardPartials("tunnel-lost", cause)
  }

  write(pos: number, port: number, data: Uint8Array, end: boolean, key?: MessageKey): void {
    // Bytes of a message still streaming in move `pos` as soon as they arrive: the relay gives the
    // console its credit back on that `wrote`, so it goes at once (deferring it like pointer-only progress held a
    // 10 MiB clipboard at each 1 MiB of guest window for the 250 ms pause).
    if (!end) this.mouseOnly = false
    this.assembler.receive(pos, port, data, end, key)
    this.pump()
    this.sendWrote()
    this.host.changed()
  }

  abort(port: number): void {
    this.mouseOnly = false
    this.assembler.abort(port)
    this.sendWrote()
  }

  portClosed(cause: string): void {
    this.assembler.discardAll("port-closed", cause)
  }

  /** Writes the next batch unless one is in flight, the chardev is gone or the guest port is known closed. */
  pump(): void {
    const chardev = this.host.chardev
    if (chardev === undefined || this.writing) return
    if (this.host.port === "closed") {
      this.assembler.discardAll("port-closed", "guest port closed")
      this.sendWrote()
      return
    }
    const batch = this.assembler.nextBatch(WRITE_BATCH)
    if (batch === undefined) return
    this.writing = true
    const assembler = this.assembler
    chardev.write(batch.bytes, (error) => {
      if (assembler !== this.assembler) return // the epoch ended while the write was in flight
      this.writing = false
      if (error !== undefined) return // the chardev session reports the loss
      assembler.written(batch)
      if (batch.last && batch.port === 2 && batch.message.written === batch.bytes.length && batch.bytes.length >= 16 && readU32(batch.bytes, 12) === MessageType.MouseState) this.deferredMice++
      else if (batch.last) this.mouseOnly = false
      this.metrics.inc("vdrelay_bridge_guest_bytes_written_total", this.labels, batch.bytes.length)
      if (batch.last) this.metrics.inc("vdrelay_bridge_guest_messages_written_total", this.labels)
      this.host.changed()
      this.sendWrote()
      this.pump()
    })
  }

  sendWrote(): void {
    const pos = this.assembler.wrotePos
    const server = this.assembler.serverWritten
    // A server-port message (MOUSE_STATE) written while a client-port message ahead of it still is: say so now.
    const serverAhead = server > Math.max(pos, this.lastServer)
    if (pos <= this.lastWrote && !serverAhead) return
    if (this.mouseOnly && this.deferredMice < WROTE_EVERY_MICE) {
      this.wroteTimer ??= setTimeout(() => {
        this.wroteTimer = undefined
        this.mouseOnly = false
        this.sendWrote()
      }, WROTE_IDLE_MS)
      this.wroteTimer.unref()
      return
    }
    this.settledNow()
    this.lastWrote = Math.max(pos, this.lastWrote)
    if (serverAhead) this.lastServer = server
    this.host.sendIfSynced({ t: "wrote", epoch: this.host.epoch, pos: this.lastWrote, ...(serverAhead ? { server } : {}) })
    this.host.changed()
  }

  /** A `wrote` is going out (or positions restart): nothing is deferred any more. */
  private settledNow(): void {
    this.mouseOnly = true
    this.deferredMice = 0
    if (this.wroteTimer !== undefined) clearTimeout(this.wroteTimer)
    this.wroteTimer = undefined
  }

  private newAssembler(): GuestAssembler {
    return new GuestAssembler(
      { maxMessageBytes: this.limits.maxGuestMessageBytes, bufferBytes: this.limits.guestBufferBytes, maxChunkData: 2048 },
      {
        discarded: (port, reason, bytes, detail) => this.discarded(port, reason, bytes, detail),
        duplicate: (port, key, bytes) => this.duplicate(port, key, bytes),
      },
      this.writtenKeys,
    )
  }

  private duplicate(port: number, key: MessageKey, bytes: number): void {
    this.mouseOnly = false
    this.metrics.inc("vdrelay_bridge_guest_duplicates_suppressed_total", this.labels)
    this.log.log("info", "duplicate-suppressed", { epoch: this.host.epoch, port, origin: key.origin, id: key.id, bytes })
  }

  private discarded(port: number, reason: DiscardReason, bytes: number, detail: string): void {
    this.mouseOnly = false
    this.metrics.inc("vdrelay_bridge_guest_messages_discarded_total", { ...this.labels, reason })
    const expected = reason === "aborted" || reason === "tunnel-lost" || reason === "port-closed" || reason === "chardev-lost"
    this.log.log(expected ? "info" : "warn", "guest-message-discarded", { epoch: this.host.epoch, port, reason, bytes, cause: detail })
  }
}
