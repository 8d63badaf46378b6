// A fake host bridge speaking the bridge link over any transport (workerd WebSocket or Node `ws`), for the workerd
// tests, the edge e2e test and the load runs: it keeps agent bytes until acknowledged and resends them on welcome and
// rewind (within the relay's window, when asked to keep to it), and assembles guest-bound `write` frames the way the
// real bridge must (whole messages only, `abort` drops a partial one, `wrote` never passes a message still partial),
// recording every message the "guest" receives or handing each whole write to a guest (the agent simulator).
import { concatBytes, readU32LE as u32 } from "../../src/protocol/bytes.ts"
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE } from "../../src/protocol/constants.ts"
import { LINK_VERSION, type BridgeToRelay, type RelayToBridge } from "../../src/link/types.ts"

export interface GuestMessage {
  readonly port: number
  readonly type: number
  readonly payload: Uint8Array
}

/** Splits whole chunked bytes of one port into the messages they carry (throws on a torn message: a test failure). */
export const unchunk = (port: number, bytes: Uint8Array): GuestMessage[] => {
  const out: GuestMessage[] = []
  let body: number[] = []
  let need = -1
  for (let at = 0; at < bytes.length; ) {
    if (u32(bytes, at) !== port) throw new Error(`chunk for port ${u32(bytes, at)} inside a write for port ${port}`)
    const size = u32(bytes, at + 4)
    body.push(...bytes.subarray(at + CHUNK_HEADER_SIZE, at + CHUNK_HEADER_SIZE + size))
    at += CHUNK_HEADER_SIZE + size
    if (need < 0 && body.length >= MESSAGE_HEADER_SIZE) need = MESSAGE_HEADER_SIZE + u32(Uint8Array.from(body), 16)
    if (need >= 0 && body.length >= need) {
      const m = Uint8Array.from(body)
      if (m.length !== need) throw new Error("two messages in one chunk")
      out.push({ port, type: u32(m, 4), payload: m.subarray(MESSAGE_HEADER_SIZE) })
      body = []
      need = -1
    }
  }
  if (body.length > 0) throw new Error(`torn message: ${body.length} bytes left over at the end of a write`)
  return out
}

export interface FakeBridgeOptions {
  readonly epoch?: number
  readonly name?: string
  /**
   * Send agent bytes only after the relay's welcome and within its window, forgetting them once acknowledged, as the
   * real bridge does. Without it every agent write goes out at once and the whole stream stays for replays.
   */
  readonly window?: boolean
  /** Takes each whole guest-bound message's chunk bytes instead of recording them in `guest` (a guest that parses). */
  readonly toGuest?: (port: number, bytes: Uint8Array) => void
}

export class FakeBridge {
  readonly epoch: number
  readonly name: string
  /** Agent bytes kept for resending, from stream position `keptFrom`, one entry per data frame. */
  private kept: Uint8Array[] = []
  private keptFrom = 0
  /** Agent stream position up to which bytes went out since the last (re)start. */
  private sent = 0
  private windowBytes = Number.POSITIVE_INFINITY
  private welcomed = false
  acked = 0
  wrote = 0
  /** Guest-bound messages received whole (unless `toGuest` takes them). */
  readonly guest: GuestMessage[] = []
  readonly aborted: number[] = []
  /** Guest-bound frames not at the position the previous ones lead to. */
  outOfPosition = 0
  /** Named messages (origin, id) written whole, as the real bridge remembers them; repeats are not written again. */
  readonly writtenKeys = new Set<string>()
  suppressed = 0
  private readonly portKey = new Map<number, string>()
  /** Next guest-bound position expected, and each port's message being received. */
  private recvPos = 0
  private readonly partial = new Map<number, { readonly start: number; readonly parts: Uint8Array[] }>()
  readonly frames: RelayToBridge[] = []
  private waiters: Array<() => void> = []
  private pings = 0

  constructor(
    private send: (f: BridgeToRelay) => void,
    private readonly opts: FakeBridgeOptions = {},
  ) {
    this.epoch = opts.epoch ?? 1
    this.name = opts.name ?? "fake-bridge"
  }

  /** Reconnected over a new transport: say hello again (the relay answers with where to resume). */
  attach(send: (f: BridgeToRelay) => void): void {
    this.send = send
    this.welcomed = false
    this.partial.clear() // a real bridge drops half-buffered guest messages with the tunnel
    this.send({ t: "hello", v: LINK_VERSION, bridge: this.name, epoch: this.epoch, chardev: true, from: this.acked, wrote: this.wrote, port: "open" })
  }

  /** The agent wrote `bytes` (the relay sees them only in `data` frames of at most `piece` bytes). */
  agentWrites(bytes: Uint8Array, piece = bytes.length): void {
    for (let at = 0; at < bytes.length; at += piece) this.kept.push(bytes.slice(at, at + piece))
    this.pump()
  }

  /** Resolves once the relay has handled every frame sent before (its pong answers in order). */
  async sync(): Promise<void> {
    const n = ++this.pings
    this.send({ t: "ping", n })
    await this.waitFor((f) => f.t === "pong" && f.n === n)
  }

  async waitFor(pred: (f: RelayToBridge) => boolean): Promise<RelayToBridge> {
    for (;;) {
      const f = this.frames.find(pred)
      if (f !== undefined) return f
      await new Promise<void>((r) => this.waiters.push(r))
    }
  }

  onFrame(f: RelayToBridge): void {
    this.frames.push(f)
    for (const w of this.waiters.splice(0)) w()
    switch (f.t) {
      case "welcome":
        this.welcomed = true
        if (this.opts.window === true) this.windowBytes = f.window
        this.ackTo(f.ack)
        return this.resendFrom(f.ack)
      case "ack":
        this.ackTo(f.pos)
        return this.pump()
      case "rewind":
        return this.resendFrom(f.pos)
      case "write": {
        if (f.pos !== this.recvPos) this.outOfPosition++
        this.recvPos = f.pos + f.data.length
        if (!this.partial.has(f.port)) {
          if (f.origin !== undefined && f.id !== undefined) this.portKey.set(f.port, `${f.origin}:${f.id}`)
          else this.portKey.delete(f.port)
        }
        const p = this.partial.get(f.port) ?? { start: f.pos, parts: [] }
        p.parts.push(f.data.slice())
        if (!f.end) return void this.partial.set(f.port, p)
        this.partial.delete(f.port)
        const key = this.portKey.get(f.port)
        this.portKey.delete(f.port)
        if (key !== undefined && this.writtenKeys.has(key)) {
          this.suppressed++
          return this.sendWrote()
        }
        if (key !== undefined) this.writtenKeys.add(key)
        const whole = concatBytes(p.parts)
        if (this.opts.toGuest !== undefined) this.opts.toGuest(f.port, whole)
        else this.guest.push(...unchunk(f.port, whole))
        return this.sendWrote()
      }
      case "abort":
        if (f.pos !== this.recvPos) this.outOfPosition++
        this.partial.delete(f.port)
        this.aborted.push(f.port)
        return this.sendWrote()
      case "pong":
      case "error":
        return
    }
  }

  /** Reports the guest-bound position written: never past the start of a message still partial on some port. */
  private sendWrote(): void {
    let pos = this.recvPos
    for (const p of this.partial.values()) pos = Math.min(pos, p.start)
    if (pos <= this.wrote) return
    this.wrote = pos
    this.send({ t: "wrote", epoch: this.epoch, pos })
  }

  private ackTo(pos: number): void {
    this.acked = Math.max(this.acked, pos)
    // The real bridge forgets what is acknowledged; without the window the whole stream stays for any replay.
    if (this.opts.window !== true) return
    while (this.kept.length > 0 && this.keptFrom + this.kept[0]!.length <= this.acked) this.keptFrom += this.kept.shift()!.length
  }

  private resendFrom(pos: number): void {
    this.sent = Math.max(this.keptFrom, pos)
    this.pump()
  }

  /** Sends kept agent bytes from `sent`, within the relay's window when keeping to it. */
  private pump(): void {
    if (this.opts.window === true && !this.welcomed) return
    let at = this.keptFrom
    for (const b of this.kept) {
      const end = at + b.length
      if (end > this.sent) {
        if (end - this.acked > this.windowBytes && this.sent > this.acked) return
        const from = Math.max(0, this.sent - at)
        this.send({ t: "data", epoch: this.epoch, pos: at + from, bytes: b.subarray(from) })
        this.sent = end
      }
      at = end
    }
  }
}
