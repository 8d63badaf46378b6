// A guest-bound test stream through the bridge: numbered 64 KiB FILE_XFER_DATA messages sent by a fake relay, and a
// judge of what a guest opener of the port read (whole messages from byte 0, none stale). Used by the emulated-chardev
// and the real-QEMU reopen tests.
import type { RelayConn } from "./fixtures.ts"
import { message } from "./guest.ts"

export const FILE_XFER_DATA = 12
const PAYLOAD = 64 * 1024
/** A message's size on the wire: 20-byte header and payload in 2048-byte chunks of 8-byte headers. */
export const WIRE = 20 + PAYLOAD + 8 * Math.ceil((20 + PAYLOAD) / 2048)
const MAGIC = 0x5354414c

/** Message `seq`'s payload: magic, seq, then bytes derived from seq (so a torn or shifted copy is recognised). */
export const payload = (seq: number): Buffer => {
  const p = Buffer.alloc(PAYLOAD)
  p.writeUInt32LE(MAGIC, 0)
  p.writeUInt32LE(seq, 4)
  for (let i = 8; i < PAYLOAD; i++) p[i] = (seq * 31 + i) & 0xff
  return p
}

/**
 * The relay side of a fake relay link: streams messages to the guest whenever it was last told the port is open, at
 * most one per `paceMs`, with at most 192 KiB beyond the bridge's `wrote`. Follows new epochs (chardev reconnects).
 */
export class Streamer {
  /** For each message seq, `mark()` when its first byte was sent (by default: the port closes the relay was told of). */
  readonly marks: Array<number> = []
  /** Open → closed transitions the relay was told of (`port` frames). */
  closesSeen = 0
  private seen = 0
  private epoch: number
  private pos = 0
  private wrote = 0
  private open: boolean
  private stopped = false
  readonly done: Promise<void>

  constructor(
    private readonly conn: RelayConn,
    /** At most one message per this many ms (may be changed while streaming). */
    public paceMs: number,
    private readonly mark: () => number = () => this.closesSeen,
  ) {
    this.epoch = conn.hello!.epoch
    this.open = conn.hello!.port === "open"
    this.done = this.run()
  }

  stop(): Promise<void> {
    this.stopped = true
    return this.done
  }

  private absorb(): void {
    const frames = this.conn.frames
    for (; this.seen < frames.length; this.seen++) {
      const f = frames[this.seen]!
      if (f.t === "chardev" && f.up) {
        // A new chardev connection (the bridge hung up the old one): positions restart; the unsent rest is lost.
        this.epoch = f.epoch
        this.pos = this.wrote = 0
      } else if (f.t === "port") {
        if (this.open && !f.open) this.closesSeen++
        this.open = f.open
      }
      else if (f.t === "wrote" && f.epoch === this.epoch) this.wrote = Math.max(this.wrote, f.pos)
    }
  }

  private async run(): Promise<void> {
    const piece = 16 * 1024
    while (!this.stopped) {
      this.absorb()
      if (!this.open || this.pos - this.wrote > 192 * 1024) {
        await new Promise((r) => setTimeout(r, 2))
        continue
      }
      const seq = this.marks.length
      this.marks.push(this.mark())
      const wire = message(1, FILE_XFER_DATA, payload(seq))
      const epoch = this.epoch
      for (let at = 0; at < wire.length && epoch === this.epoch; at += piece) {
        const data = wire.subarray(at, Math.min(wire.length, at + piece))
        this.conn.send({ t: "write", epoch, pos: this.pos, port: 1, data, end: at + piece >= wire.length })
        this.pos += data.length
        this.absorb()
      }
      // Let QMP, the chardev and the guest have the loop they share with this relay (a real relay is elsewhere).
      await new Promise((r) => setTimeout(r, this.paceMs))
    }
  }
}

export interface Verdict {
  /** Seqs of the whole messages read, in order. */
  readonly messages: Array<number>
  /** The first thing wrong with the bytes, if any: byte 0 not a message start, a torn, foreign or reordered message. */
  readonly problem?: string
  /** The first whole message read that was sent before `minMark` (before this opener could be told apart), if any. */
  readonly stale?: string
}

/**
 * What one opener read, judged from its byte 0: whole messages in order (a torn tail is allowed, the close cut it),
 * each with `marks[seq] >= minMark` (sent after this opener could be told apart from the previous one).
 */
export const judge = (stream: Buffer, minMark: number, marks: ReadonlyArray<number>): Verdict => {
  const messages: Array<number> = []
  let stale: string | undefined
  let at = 0
  let body: Array<Buffer> = []
  let want = -1
  while (at < stream.length) {
    if (stream.length - at < 8) return { messages, stale } // torn by the close: only at the end
    const port = stream.readUInt32LE(at)
    const size = stream.readUInt32LE(at + 4)
    if (port !== 1 || size === 0 || size > 2048) return { messages, stale, problem: `byte ${at}: not a chunk header (port ${port}, size ${size})` }
    if (stream.length - at - 8 < size) return { messages, stale }
    body.push(stream.subarray(at + 8, at + 8 + size))
    at += 8 + size
    const msg = Buffer.concat(body)
    if (want < 0) {
      if (msg.length < 20) continue
      if (msg.readUInt32LE(0) !== 1 || msg.readUInt32LE(4) !== FILE_XFER_DATA) return { messages, stale, problem: `byte ${at}: chunk inside a message where one should begin` }
      want = 20 + msg.readUInt32LE(16)
    }
    if (msg.length < want) continue
    if (msg.length > want) return { messages, stale, problem: `message at byte ${at} longer than it says` }
    const seq = msg.readUInt32LE(24)
    if (msg.readUInt32LE(20) !== MAGIC || !msg.subarray(20).equals(payload(seq))) return { messages, stale, problem: `message ending at byte ${at} is not a whole sent message` }
    if (messages.length > 0 && seq <= messages.at(-1)!) return { messages, stale, problem: `message ${seq} after ${messages.at(-1)}` }
    if ((marks[seq] ?? -1) < minMark) stale ??= `message ${seq} is stale: sent at mark ${marks[seq]}, before ${minMark}`
    messages.push(seq)
    body = []
    want = -1
  }
  return { messages, stale }
}

