// The peers of the session actor, modelled for tests: a bridge that buffers guest-bound writes per port and "writes"
// only whole messages to a modelled chardev (parsed like the agent would), and clients that reassemble msg/more by seq.
import { concatBytes } from "../../../src/protocol/bytes.ts"
import { StreamParser } from "../../../src/protocol/stream-parser.ts"
import { encodeChunkHeader, encodeMessageHeader } from "../../../src/protocol/header.ts"
import type { RelayToClient, Role } from "../../../src/link/types.ts"

export interface Msg {
  readonly port: number
  readonly type: number
  readonly payload: Uint8Array
}

/** The tests' name for src/protocol's concatBytes. */
export const concat = concatBytes

/** One message as the real agent writes it: a single chunk of any size (spec §11). */
export const agentChunk = (port: number, type: number, payload: Uint8Array): Uint8Array =>
  concat([encodeChunkHeader({ port, size: 20 + payload.length }), encodeMessageHeader({ type, size: payload.length }), payload])

export const bytes = (n: number, seed = 1): Uint8Array => {
  const b = new Uint8Array(n)
  let x = seed * 2654435761
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

export const u32le = (...ws: number[]): Uint8Array => {
  const b = new Uint8Array(4 * ws.length)
  const v = new DataView(b.buffer)
  ws.forEach((w, i) => v.setUint32(4 * i, w >>> 0, true))
  return b
}

/** What a client would see: frames, and whole messages reassembled by seq. */
export class ClientModel {
  frames: RelayToClient[] = []
  partial = new Map<number, { type: number; size: number; parts: Uint8Array[] }>()
  messages: Array<{ seq: number; type: number; payload: Uint8Array }> = []
  closed: { code: string; detail: string } | null = null
  role: Role | null = null
  agent: { connected: boolean; caps: ReadonlyArray<number> | null } | null = null
  nextId = 1
  /** Ids sent and their fate. */
  sent = new Map<number, { type: number; fate: Array<"ack" | string> }>()
  creditBack = 0
  torn: string[] = []
  /** The `lastSeq` it resumed with: no fragment at or below it may arrive. */
  floor = -1
  constructor(readonly id: string) {}

  /** The resume token of its welcome ("" if none). */
  token(): string {
    const w = this.frames.find((f) => f.t === "welcome")
    return w?.t === "welcome" ? w.resume : ""
  }

  /** What an SDK sends as `lastSeq`: every message up to it received whole, none after it half kept. */
  lastWholeSeq(): number {
    let last = this.messages.length === 0 ? -1 : this.messages[this.messages.length - 1]!.seq
    for (const seq of this.partial.keys()) last = Math.min(last, seq - 1)
    return last
  }

  receive(f: RelayToClient): void {
    this.frames.push(f)
    switch (f.t) {
      case "welcome": this.role = f.role; this.agent = f.agent; break
      case "role": this.role = f.role; break
      case "agent": this.agent = { connected: f.connected, caps: f.caps }; break
      case "msg":
        if (f.seq <= this.floor) this.torn.push(`seq ${f.seq} at or below the lastSeq ${this.floor} it resumed with`)
        if (this.partial.has(f.seq)) this.torn.push(`msg ${f.seq} restarted`)
        if (this.messages.length > 0 && f.seq <= this.messages[this.messages.length - 1]!.seq && !this.partial.has(f.seq)) this.torn.push(`seq ${f.seq} not increasing`)
        this.partial.set(f.seq, { type: f.type, size: f.size, parts: [f.data] })
        if (f.end) this.complete(f.seq)
        break
      case "more": {
        const p = this.partial.get(f.seq)
        if (p === undefined) this.torn.push(`more for unknown seq ${f.seq}`)
        else {
          p.parts.push(f.data)
          if (f.end) this.complete(f.seq)
        }
        break
      }
      case "abort": this.partial.delete(f.seq); break
      case "ack": this.sent.get(f.id)?.fate.push("ack"); break
      case "notice": if (f.id !== undefined) this.sent.get(f.id)?.fate.push(f.code); break
      case "credit": this.creditBack += f.bytes; break
    }
  }

  private complete(seq: number): void {
    const p = this.partial.get(seq)!
    this.partial.delete(seq)
    const payload = concat(p.parts)
    if (payload.length !== p.size) this.torn.push(`seq ${seq}: ${payload.length} bytes of ${p.size}`)
    this.messages.push({ seq, type: p.type, payload })
  }
}

/** A whole message written to the chardev, with the key its first write named (client messages only). */
export type Written = Msg & { readonly key?: { readonly origin: string; readonly id: number } }

/**
 * What the bridge and the guest would see: writes buffered per port, whole messages written, parsed like the agent. A
 * keyed message whose key was written before is not written again (src/bridge/written-keys.ts), unless `dedupe` is off
 * (the defect the oracles must catch).
 */
export class BridgeModel {
  dedupe = true
  /** Keyed messages not written again (their key was). */
  suppressed = 0
  private readonly writtenKeys = new Set<string>()
  private readonly portKey = new Map<number, { origin: string; id: number }>()
  connected = false
  epoch = 1
  /** Guest-bound: next expected position, per-port partial buffers, the chardev stream as messages. */
  wnext = 0
  portBuf = new Map<number, Uint8Array[]>()
  written: Written[] = []
  torn: string[] = []
  /** Agent-bound: the agent's stream of this epoch, what was acked and sent. */
  agent: Uint8Array[] = []
  agentLen = 0
  agentMsgs: Array<Msg & { end: number }> = []
  acked = 0
  sentTo = 0
  window = 0
  frames: unknown[] = []

  write(f: { epoch: number; pos: number; port: number; data: Uint8Array; end: boolean; origin?: string; id?: number }): void {
    if (f.epoch !== this.epoch) return
    if (f.pos !== this.wnext) this.torn.push(`write at ${f.pos}, expected ${this.wnext}`)
    this.wnext = f.pos + f.data.length
    if (!this.portBuf.has(f.port)) {
      if (f.origin !== undefined && f.id !== undefined) this.portKey.set(f.port, { origin: f.origin, id: f.id })
      else this.portKey.delete(f.port)
    }
    const buf = this.portBuf.get(f.port) ?? []
    buf.push(f.data)
    this.portBuf.set(f.port, buf)
    if (!f.end) return
    this.portBuf.delete(f.port)
    const all = concat(buf)
    const found: Msg[] = []
    const parser = new StreamParser({ maxChunkSize: 2048, maxMessageSize: 1 << 30 })
    const parts: Uint8Array[] = []
    let head: { port: number; type: number } | null = null
    parser.push(all, {
      message: (port, h, body) => found.push({ port, type: h.type, payload: body.slice() }),
      start: (port, h) => { head = { port, type: h.type }; parts.length = 0 },
      data: (_p, b) => parts.push(b.slice()),
      end: () => { found.push({ ...head!, payload: concat(parts) }); head = null },
      error: (e) => this.torn.push(`chardev write not parseable: ${e.reason} ${e.detail}`),
    })
    if (!parser.atBoundary || found.length !== 1 || found[0]!.port !== f.port) this.torn.push(`write end on port ${f.port} is not exactly one whole message (${found.length})`)
    const key = this.portKey.get(f.port)
    this.portKey.delete(f.port)
    if (key === undefined) return void this.written.push(...found)
    const k = `${key.origin}:${key.id}`
    if (this.dedupe && this.writtenKeys.has(k)) {
      this.suppressed++
      return
    }
    this.writtenKeys.add(k)
    this.written.push(...found.map((m) => ({ ...m, key })))
  }

  abort(f: { epoch: number; pos: number; port: number }): void {
    if (f.epoch !== this.epoch) return
    if (f.pos !== this.wnext) this.torn.push(`abort at ${f.pos}, expected ${this.wnext}`)
    this.portBuf.delete(f.port)
    this.portKey.delete(f.port)
  }

  appendAgent(port: number, type: number, payload: Uint8Array): void {
    const b = agentChunk(port, type, payload)
    this.agent.push(b)
    this.agentLen += b.length
    this.agentMsgs.push({ port, type, payload, end: this.agentLen })
  }

  appendRaw(b: Uint8Array): void {
    this.agent.push(b)
    this.agentLen += b.length
  }

  private flat: Uint8Array = new Uint8Array(0)
  agentRange(from: number, to: number): Uint8Array {
    if (this.flat.length !== this.agentLen) this.flat = concat(this.agent)
    return this.flat.subarray(from, to)
  }
}


/** Byte equality without a per-element deep compare (vitest's toEqual is slow on MiB arrays). */
export const same = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
