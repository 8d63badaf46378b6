// The whole-stream oracle of the chaos rig: every byte the emulated chardev hands to a guest connection, parsed as the
// agent parses it, with the file transfers followed message by message. A round's checks judge one message at a time
// (whole or reported); this judges the sequence: a file transfer's DATA written once each, in order, only to the agent
// connection that got its START, never after its cancel, and adding up to the file byte for byte; and no stale byte:
// nothing written while no guest had the port open may reach the next opener (issue 11 item 4). Such bytes can parse
// cleanly — a message begun after the old opener left, cut when the relay learnt of the close — and still leave the new
// agent inside a message that never ends, swallowing every later message as its body (the daemon-restart-down failure).
import { createHash } from "node:crypto"
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, MessageType } from "../../../src/protocol/constants.ts"

const {
  FileXferStart: FILE_XFER_START,
  FileXferStatus: FILE_XFER_STATUS,
  FileXferData: FILE_XFER_DATA,
  ClientDisconnected: CLIENT_DISCONNECTED,
} = MessageType
const CHUNK_HEADER = CHUNK_HEADER_SIZE
/** A close→open gap from which no byte written before the open may reach the opener (issue 11 item 4). */
export const STALE_GAP_MS = 20
const MESSAGE_HEADER = MESSAGE_HEADER_SIZE

interface Transfer {
  /** Guest connection its START was written to. */
  readonly connection: number
  readonly parts: Buffer[]
  bytes: number
  /** A FILE_XFER_STATUS (cancel or error) for it was written to the guest. */
  cancelled: boolean
}

interface Partial {
  readonly type: number
  readonly size: number
  readonly parts: Buffer[]
  got: number
}

export class GuestStream {
  /** Every violation seen, in order; `since(mark)` gives a round's. */
  readonly problems: string[] = []
  /** Whole messages seen per guest connection. */
  messages = 0
  private connection = -1
  private pending = Buffer.alloc(0)
  /** The connection's bytes can no longer be parsed (a torn or stale chunk): the rest of it is not judged. */
  private lost = false
  private readonly partial = new Map<number, Partial>()
  private readonly transfers = new Map<number, Transfer>()

  /** Host bytes handed to guest connection `connection` (EmulatedChardev "to-guest"). */
  feed(bytes: Buffer, connection: number): void {
    if (connection !== this.connection) {
      // A new opener: what the old one held half is gone with it (the guest kernel drops it).
      this.connection = connection
      this.pending = Buffer.alloc(0)
      this.partial.clear()
      this.lost = false
    }
    if (this.lost) return
    this.pending = this.pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.pending, bytes])
    let at = 0
    while (this.pending.length - at >= CHUNK_HEADER) {
      const port = this.pending.readUInt32LE(at)
      const size = this.pending.readUInt32LE(at + 4)
      if ((port !== 1 && port !== 2) || size === 0 || size > 2048) {
        this.problem(`guest connection ${connection}: bytes that are no chunk header (port ${port}, size ${size}): torn or stale`)
        this.lost = true
        return
      }
      if (this.pending.length - at < CHUNK_HEADER + size) break
      this.chunk(port, this.pending.subarray(at + CHUNK_HEADER, at + CHUNK_HEADER + size))
      if (this.lost) return
      at += CHUNK_HEADER + size
    }
    this.pending = this.pending.subarray(at)
  }

  mark(): number {
    return this.problems.length
  }

  since(mark: number): string[] {
    return this.problems.slice(mark)
  }

  /**
   * The SDK's verdict on transfer `id` of `data`: "done" must be byte-exact in the guest stream; "failed" must have
   * left a prefix of the file (no block doubled or out of order) and, if its agent connection is still the current
   * one, a cancel written after the last block.
   */
  judgeFile(id: number, data: Uint8Array, outcome: "done" | "failed"): void {
    const t = this.transfers.get(id)
    if (t === undefined) {
      if (outcome === "done") this.problem(`file ${id}: reported done, its START never reached the guest`)
      return
    }
    const got = Buffer.concat(t.parts)
    const want = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    const differs = firstDifference(got, want)
    if (outcome === "done" && (got.length !== want.length || differs !== -1))
      this.problem(`file ${id}: reported done, the guest got ${got.length} bytes of ${want.length}${differs === -1 ? "" : `, differing from byte ${differs}`}; blocks in the order written: ${blockOrder(t.parts, want)}`)
    if (outcome === "failed") {
      if (got.length > want.length || differs !== -1) this.problem(`file ${id}: failed with ${got.length} bytes in the guest that are no prefix of the file (differ at ${differs})`)
      if (!t.cancelled && t.connection === this.connection) this.problem(`file ${id}: reported failed, the agent connection that holds it was never told`)
    }
  }

  private chunk(port: number, body: Buffer): void {
    let p = this.partial.get(port)
    if (p === undefined) {
      if (body.length < MESSAGE_HEADER || body.readUInt32LE(0) !== 1) {
        this.problem(`guest connection ${this.connection}: a port-${port} chunk starts no message (protocol ${body.length >= 4 ? body.readUInt32LE(0) : "?"}): torn or stale`)
        this.lost = true
        return
      }
      p = { type: body.readUInt32LE(4), size: body.readUInt32LE(16), parts: [], got: 0 }
      this.partial.set(port, p)
      body = body.subarray(MESSAGE_HEADER)
    }
    p.parts.push(Buffer.from(body))
    p.got += body.length
    if (p.got > p.size) {
      this.problem(`guest connection ${this.connection}: a type ${p.type} message runs ${p.got - p.size} bytes past its size`)
      this.lost = true
      return
    }
    if (p.got < p.size) return
    this.partial.delete(port)
    this.messages++
    this.message(port, p.type, Buffer.concat(p.parts))
  }

  private message(port: number, type: number, payload: Buffer): void {
    // The agent drops every transfer of this connection when its client goes (spec §5.7 case 3).
    if (type === CLIENT_DISCONNECTED) for (const t of this.transfers.values()) if (t.connection === this.connection) t.cancelled = true
    if (port !== 1 || payload.length < 4) return
    const id = payload.readUInt32LE(0)
    switch (type) {
      case FILE_XFER_START:
        if (this.transfers.has(id)) this.problem(`file ${id}: FILE_XFER_START written twice (${digest(payload)})`)
        else this.transfers.set(id, { connection: this.connection, parts: [], bytes: 0, cancelled: false })
        return
      case FILE_XFER_DATA: {
        const t = this.transfers.get(id)
        if (t === undefined) return this.problem(`file ${id}: DATA with no START before it`)
        if (t.cancelled) this.problem(`file ${id}: DATA written after its cancel`)
        if (t.connection !== this.connection) this.problem(`file ${id}: DATA on guest connection ${this.connection}, its START went to connection ${t.connection}`)
        const data = payload.subarray(12)
        t.parts.push(data)
        t.bytes += data.length
        return
      }
      case FILE_XFER_STATUS: {
        const t = this.transfers.get(id)
        if (t !== undefined) t.cancelled = true
        return
      }
    }
  }

  /** Held bytes handed to an opener that reopened within STALE_GAP_MS of the close (a bounce): counted, not judged. */
  bounceHeldBytes = 0

  /**
   * The chardev handed `bytes` held host bytes — written while no guest had the port open — to new guest connection
   * `connection` before anything else (EmulatedChardev "held-delivered"), `gapMs` after the previous opener closed:
   * stale bytes, whatever they parse as, when the port stayed closed for STALE_GAP_MS or more (issue 11 item 4; a
   * daemon reopening its port at once after an EOF bounces faster than any host can learn of the close).
   */
  staleHeld(bytes: number, connection: number, gapMs: number): void {
    if (gapMs < STALE_GAP_MS) {
      this.bounceHeldBytes += bytes
      return
    }
    this.problem(`guest connection ${connection}: ${bytes} B written while the guest port was closed (${Math.round(gapMs)} ms) were handed to the next opener (stale)`)
  }

  private problem(text: string): void {
    this.problems.push(text)
  }
}

/** Which block of the file each DATA carried (found by content), runs compressed: "0-11 13 12 14-63". */
const blockOrder = (parts: ReadonlyArray<Buffer>, file: Buffer): string => {
  const index = parts.map((p) => {
    if (p.length === 0) return -1
    for (let at = 0; at + p.length <= file.length; at += p.length) if (file.subarray(at, at + p.length).equals(p)) return at / p.length
    return -1
  })
  const out: string[] = []
  for (let i = 0; i < index.length; ) {
    let j = i
    while (j + 1 < index.length && index[j + 1] === index[j]! + 1 && index[i]! >= 0) j++
    out.push(j === i ? String(index[i]) : `${index[i]}-${index[j]}`)
    i = j + 1
  }
  return out.join(" ")
}

const firstDifference = (a: Buffer, b: Buffer): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return -1
}

const digest = (b: Buffer): string => createHash("sha256").update(b).digest("hex").slice(0, 12)
