// A fake host bridge speaking the bridge link over any transport (workerd WebSocket or Node `ws`): it keeps agent
// bytes until acknowledged and replays them on welcome/rewind, and assembles guest-bound `write` frames the way the
// real bridge must (whole messages only, `abort` drops a partial one), recording every message the "guest" receives.
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

export class FakeBridge {
  /** Agent bytes of this epoch from position 0 (the test's whole agent stream). */
  private agent = new Uint8Array(0)
  acked = 0
  wrote = 0
  readonly guest: GuestMessage[] = []
  readonly aborted: number[] = []
  private partial = new Map<number, Uint8Array[]>()
  readonly frames: RelayToBridge[] = []
  private waiters: Array<() => void> = []
  private pings = 0

  constructor(
    private send: (f: BridgeToRelay) => void,
    readonly epoch = 1,
    readonly name = "fake-bridge",
  ) {}

  /** Reconnected over a new transport: say hello again (the relay answers with where to resume). */
  attach(send: (f: BridgeToRelay) => void): void {
    this.send = send
    this.partial.clear() // a real bridge drops half-buffered guest messages with the tunnel
    this.send({ t: "hello", v: LINK_VERSION, bridge: this.name, epoch: this.epoch, chardev: true, from: this.acked, wrote: this.wrote, port: "open" })
  }

  /** The agent wrote `bytes` (the relay sees them only in `data` frames of at most `piece` bytes). */
  agentWrites(bytes: Uint8Array, piece = bytes.length): void {
    const from = this.agent.length
    const next = new Uint8Array(from + bytes.length)
    next.set(this.agent)
    next.set(bytes, from)
    this.agent = next
    for (let at = 0; at < bytes.length; at += piece) {
      this.send({ t: "data", epoch: this.epoch, pos: from + at, bytes: bytes.slice(at, at + piece) })
    }
  }

  private replay(from: number): void {
    if (from < this.agent.length) this.send({ t: "data", epoch: this.epoch, pos: from, bytes: this.agent.slice(from) })
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
        this.acked = Math.max(this.acked, f.ack)
        return this.replay(f.ack)
      case "ack":
        this.acked = Math.max(this.acked, f.pos)
        return
      case "rewind":
        return this.replay(f.pos)
      case "write": {
        const parts = this.partial.get(f.port) ?? []
        parts.push(f.data)
        this.partial.set(f.port, parts)
        if (!f.end) return
        this.partial.delete(f.port)
        const whole = concatBytes(parts)
        this.guest.push(...unchunk(f.port, whole))
        this.wrote = f.pos + f.data.length
        return this.send({ t: "wrote", epoch: this.epoch, pos: this.wrote })
      }
      case "abort":
        this.partial.delete(f.port)
        this.aborted.push(f.port)
        return
      case "pong":
      case "error":
        return
    }
  }
}
