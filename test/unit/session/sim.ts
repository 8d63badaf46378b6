// Test harness for the session actor: drives `step` and plays the peers faithfully — a bridge that buffers guest-bound
// writes per port and "writes" only whole messages to a modelled chardev (parsed like the agent would), and clients
// that reassemble msg/more by seq — so tests can assert on what each consumer would really see.
import { StreamParser } from "../../../src/protocol/stream-parser.ts"
import { encodeChunkHeader, encodeMessageHeader } from "../../../src/protocol/header.ts"
import { MessageType } from "../../../src/protocol/constants.ts"
import { defaultPolicy, LINK_VERSION, type Policy, type RelayToClient, type Role, type PortLevel, type ClientToRelay } from "../../../src/link/types.ts"
import {
  initialState,
  restore,
  step,
  type BridgeLinkAttachment,
  type ClientLinkAttachment,
  type Limits,
  type PersistedState,
  type SessionCommand,
  type SessionEvent,
  type SessionState,
} from "../../../src/session/index.ts"

export interface Msg {
  readonly port: number
  readonly type: number
  readonly payload: Uint8Array
}

type EventBody = SessionEvent extends infer E ? (E extends { now: number } ? Omit<E, "now"> : never) : never

export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

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
  constructor(readonly id: string) {}

  receive(f: RelayToClient): void {
    this.frames.push(f)
    switch (f.t) {
      case "welcome": this.role = f.role; this.agent = f.agent; break
      case "role": this.role = f.role; break
      case "agent": this.agent = { connected: f.connected, caps: f.caps }; break
      case "msg":
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

/** What the bridge and the guest would see: writes buffered per port, whole messages written, parsed like the agent. */
export class BridgeModel {
  connected = false
  epoch = 1
  /** Guest-bound: next expected position, per-port partial buffers, the chardev stream as messages. */
  wnext = 0
  portBuf = new Map<number, Uint8Array[]>()
  written: Msg[] = []
  torn: string[] = []
  /** Agent-bound: the agent's stream of this epoch, what was acked and sent. */
  agent: Uint8Array[] = []
  agentLen = 0
  agentMsgs: Array<Msg & { end: number }> = []
  acked = 0
  sentTo = 0
  window = 0
  frames: unknown[] = []

  write(f: { epoch: number; pos: number; port: number; data: Uint8Array; end: boolean }): void {
    if (f.epoch !== this.epoch) return
    if (f.pos !== this.wnext) this.torn.push(`write at ${f.pos}, expected ${this.wnext}`)
    this.wnext = f.pos + f.data.length
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
    this.written.push(...found)
  }

  abort(f: { epoch: number; pos: number; port: number }): void {
    if (f.epoch !== this.epoch) return
    if (f.pos !== this.wnext) this.torn.push(`abort at ${f.pos}, expected ${this.wnext}`)
    this.portBuf.delete(f.port)
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

export interface SimOptions {
  readonly policy?: Partial<Policy>
  readonly limits?: Partial<Limits>
  /** Bytes per bridge data frame (default: everything available). */
  readonly split?: number
}

export class Sim {
  state: SessionState
  now = 1_000
  commands: SessionCommand[] = []
  all: SessionCommand[] = []
  persisted: PersistedState | null = null
  attachments = new Map<string, ClientLinkAttachment | BridgeLinkAttachment>()
  bridge = new BridgeModel()
  clients = new Map<string, ClientModel>()
  departed = new Set<string>()
  violations: string[] = []
  split: number

  constructor(readonly opts: SimOptions = {}) {
    this.state = initialState({ session: "vm-1", policy: { ...defaultPolicy, ...opts.policy }, now: this.now, ...(opts.limits ? { limits: opts.limits } : {}) })
    this.split = opts.split ?? Number.MAX_SAFE_INTEGER
  }

  step(e: EventBody): SessionCommand[] {
    this.now += 1
    const r = step(this.state, { ...e, now: this.now } as SessionEvent)
    this.state = r.state
    this.run(r.commands)
    return r.commands.slice()
  }

  run(cmds: ReadonlyArray<SessionCommand>): void {
    this.commands = [...cmds]
    this.all.push(...cmds)
    for (const c of cmds) {
      switch (c._tag) {
        case "SendToClient": {
          const m = this.clients.get(c.client)
          if (m === undefined || m.closed !== null) { this.violations.push(`command to departed client ${c.client}: ${c.frame.t}`); break }
          m.receive(c.frame)
          break
        }
        case "CloseClient": {
          const m = this.clients.get(c.client)
          if (m === undefined || m.closed !== null) { this.violations.push(`close of departed client ${c.client}`); break }
          m.closed = { code: c.code, detail: c.detail }
          this.departed.add(c.client)
          break
        }
        case "SetAttachment":
          if (c.link !== "bridge" && this.departed.has(c.link.client)) this.violations.push(`attachment for departed ${c.link.client}`)
          this.attachments.set(c.link === "bridge" ? "bridge" : c.link.client, c.data)
          break
        case "Persist": this.persisted = c.state; break
        case "SendToBridge": this.toBridge(c.frame); break
        case "CloseBridge": this.bridge.connected = false; break
        default: break
      }
    }
  }

  private toBridge(f: Extract<SessionCommand, { _tag: "SendToBridge" }>["frame"]): void {
    const b = this.bridge
    if (!b.connected) { this.violations.push(`bridge frame ${f.t} while no bridge`); return }
    b.frames.push(f)
    switch (f.t) {
      case "welcome": b.window = f.window; b.acked = Math.max(b.acked, f.ack); b.sentTo = f.ack; break
      case "ack": if (f.epoch === b.epoch) { if (f.pos < b.acked) this.violations.push(`ack went back ${f.pos} < ${b.acked}`); b.acked = f.pos } break
      case "write": b.write(f); break
      case "abort": b.abort(f); break
      case "rewind": if (f.epoch === b.epoch) b.sentTo = Math.max(f.pos, b.acked); break
      default: break
    }
  }

  // ------------------------------------------------------------------ bridge side

  attachBridge(o: { epoch?: number; chardev?: boolean; port?: PortLevel; from?: number } = {}): SessionCommand[] {
    const b = this.bridge
    if (o.epoch !== undefined && o.epoch !== b.epoch) this.newEpochModel(o.epoch)
    b.connected = true
    b.portBuf.clear()
    return this.step({ _tag: "BridgeAttached", hello: { t: "hello", v: LINK_VERSION, bridge: "br-1", epoch: b.epoch, chardev: o.chardev ?? true, from: o.from ?? b.acked, wrote: b.wnext, port: o.port ?? "unknown" } })
  }

  private newEpochModel(epoch: number): void {
    const b = this.bridge
    b.epoch = epoch
    b.wnext = 0
    b.portBuf.clear()
    b.agent = []
    b.agentLen = 0
    b.agentMsgs = []
    b.acked = 0
    b.sentTo = 0
  }

  detachBridge(): SessionCommand[] {
    this.bridge.connected = false
    this.bridge.portBuf.clear() // partial messages are dropped on tunnel loss
    return this.step({ _tag: "BridgeDetached", cause: "closed" })
  }

  chardev(up: boolean, epoch?: number): SessionCommand[] {
    if (up && epoch !== undefined) this.newEpochModel(epoch)
    return this.step({ _tag: "BridgeFrameReceived", frame: { t: "chardev", epoch: this.bridge.epoch, up } })
  }

  port(open: boolean): SessionCommand[] {
    return this.step({ _tag: "BridgeFrameReceived", frame: { t: "port", epoch: this.bridge.epoch, open } })
  }

  /** The agent writes a message; call pump() to deliver. */
  agentSays(type: number, payload: Uint8Array, port = 1): void {
    this.bridge.appendAgent(port, type, payload)
  }

  /** Sends agent bytes the window allows, in frames of `split` bytes. */
  pump(max = Number.MAX_SAFE_INTEGER): void {
    const b = this.bridge
    let budget = max
    while (b.connected && budget > 0) {
      const limit = Math.min(b.agentLen, b.acked + b.window)
      if (b.sentTo >= limit) return
      const n = Math.min(this.split, limit - b.sentTo, budget)
      const data = b.agentRange(b.sentTo, b.sentTo + n).slice()
      const pos = b.sentTo
      b.sentTo += n
      budget -= n
      this.step({ _tag: "BridgeFrameReceived", frame: { t: "data", epoch: b.epoch, pos, bytes: data } })
    }
  }

  /** The bridge reports everything it received as written (partial messages do not hold `wrote` back). */
  wrote(): SessionCommand[] {
    return this.step({ _tag: "BridgeFrameReceived", frame: { t: "wrote", epoch: this.bridge.epoch, pos: this.bridge.wnext } })
  }

  // ------------------------------------------------------------------ client side

  join(id: string, role: Role = "controller", caps: number[] = [0x3f7], maxRole: Role = "controller"): ClientModel {
    const m = new ClientModel(id)
    this.clients.set(id, m)
    this.departed.delete(id)
    this.step({ _tag: "ClientJoined", client: id, maxRole, hello: { t: "hello", v: LINK_VERSION, client: id, role, caps } })
    return m
  }

  leave(id: string): void {
    const m = this.clients.get(id)
    if (m !== undefined && m.closed === null) m.closed = { code: "left", detail: "" }
    this.departed.add(id)
    this.step({ _tag: "ClientLeft", client: id, cause: "closed" })
  }

  frame(id: string, frame: ClientToRelay): SessionCommand[] {
    return this.step({ _tag: "ClientFrameReceived", client: id, frame })
  }

  /** Sends a whole message in fragments of `frag` bytes; `stopAfter` fragments then stops (a half-sent message). */
  send(id: string, type: number, payload: Uint8Array, o: { frag?: number; stopAfter?: number } = {}): number {
    const m = this.clients.get(id)!
    const mid = m.nextId++
    m.sent.set(mid, { type, fate: [] })
    const frag = o.frag ?? 65536
    let sent = 0
    let n = 0
    do {
      const data = payload.subarray(sent, Math.min(payload.length, sent + frag))
      const end = sent + data.length === payload.length
      this.frame(id, n === 0 ? { t: "msg", id: mid, type, size: payload.length, data, end } : { t: "more", id: mid, data, end })
      sent += data.length
      n++
      if (o.stopAfter !== undefined && n >= o.stopAfter && !end) return mid
    } while (sent < payload.length)
    return mid
  }

  /** Continues a half-sent message. */
  sendRest(id: string, mid: number, payload: Uint8Array, from: number, frag = 65536): void {
    let sent = from
    while (sent < payload.length) {
      const data = payload.subarray(sent, Math.min(payload.length, sent + frag))
      sent += data.length
      this.frame(id, { t: "more", id: mid, data, end: sent === payload.length })
    }
  }

  credit(id: string, n: number): void {
    this.frame(id, { t: "credit", bytes: n })
  }

  /** Restarts the actor from the last Persist and the attachments of the links still open. */
  restart(): SessionCommand[] {
    const clients = [...this.clients.values()].filter((m) => m.closed === null).map((m) => this.attachments.get(m.id) as ClientLinkAttachment).filter((a) => a !== undefined)
    const bridge = this.bridge.connected ? (this.attachments.get("bridge") as BridgeLinkAttachment | undefined) : undefined
    const r = restore(this.persisted!, bridge === undefined ? { clients } : { bridge, clients }, this.now, this.opts.limits ? { limits: this.opts.limits } : undefined)
    this.state = r.state
    this.bridge.portBuf.clear()
    this.run(r.commands)
    return r.commands.slice()
  }

  /** Messages the agent received on the client port, by type. */
  agentGot(type?: number): Msg[] {
    return this.bridge.written.filter((m) => type === undefined || m.type === type)
  }

  tornAnywhere(): string[] {
    return [...this.violations, ...this.bridge.torn, ...[...this.clients.values()].flatMap((c) => c.torn.map((t) => `${c.id}: ${t}`))]
  }
}

export const announce = (request: boolean, caps: number[]): Uint8Array => u32le(request ? 1 : 0, ...caps)
export { MessageType }

/** Byte equality without a per-element deep compare (vitest's toEqual is slow on MiB arrays). */
export const same = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
