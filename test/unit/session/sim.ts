// Test harness for the session actor: drives `step` (and `restore`) against the peers modelled in peers.ts, so tests
// can assert on what each consumer would really see.
import { MessageType } from "../../../src/protocol/constants.ts"
import { defaultPolicy, LINK_VERSION, type Policy, type Role, type PortLevel, type ClientToRelay, type RelayToClient } from "../../../src/link/types.ts"
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
import { BridgeModel, ClientModel, type Msg, u32le } from "./peers.ts"

export * from "./peers.ts"

type EventBody = SessionEvent extends infer E ? (E extends { now: number } ? Omit<E, "now"> : never) : never

export interface SimOptions {
  readonly policy?: Partial<Policy>
  readonly limits?: Partial<Limits>
  /** Bytes per bridge data frame (default: everything available). */
  readonly split?: number
  /** Consoles say `hello.confirms` (they confirm with `got`, which the test sends: `sim.got(id)`). */
  readonly confirms?: boolean
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
  /** hello.origin per link: like the SDK's, one per console, kept by the links that resume its seat. */
  origins = new Map<string, string>()
  /** The link that holds each origin now: a console has one link at a time. */
  private readonly holder = new Map<string, string>()
  departed = new Set<string>()
  /** Consoles whose frames are lost on the way (a socket a crash is killing): handed out by the relay, never received. */
  losing = new Set<string>()
  /** The frames so lost, per console. */
  lost = new Map<string, RelayToClient[]>()
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
          if (!this.losing.has(c.client)) m.receive(c.frame)
          else this.lost.set(c.client, [...(this.lost.get(c.client) ?? []), c.frame])
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

  /** Joins with a fresh resume token `tok-<id>` (what the adapter draws at random); `resume` offers an old one. */
  join(id: string, role: Role = "controller", caps: number[] = [0x3f7], maxRole: Role = "controller", resume?: { token: string; lastSeq?: number }): ClientModel {
    const m = resume !== undefined && this.clients.get(id)?.frames.length === 0 ? this.clients.get(id)! : new ClientModel(id)
    this.clients.set(id, m)
    this.departed.delete(id)
    if (!this.origins.has(id)) this.origins.set(id, `origin-${id}`)
    this.holder.set(this.origins.get(id)!, id)
    const hello = { t: "hello" as const, v: LINK_VERSION, client: id, role, caps, origin: this.origins.get(id)!, ...(resume === undefined ? {} : { resume: resume.token }), ...(resume?.lastSeq === undefined ? {} : { lastSeq: resume.lastSeq }), ...(this.opts.confirms === true ? { confirms: true } : {}) }
    this.step({ _tag: "ClientJoined", client: id, maxRole, hello, resumeToken: `tok-${id}` })
    return m
  }

  /** A new link `id` resuming with the token `old`'s welcome gave, and the highest seq `old` received whole. */
  resume(id: string, old: string, o: { role?: Role; maxRole?: Role; lastSeq?: number; token?: string } = {}): ClientModel {
    const prev = this.clients.get(old)!
    const lastSeq = o.lastSeq ?? prev.lastWholeSeq()
    const m = new ClientModel(id)
    m.floor = lastSeq
    this.clients.set(id, m)
    // The console that held `old` goes on with its origin and numbering (per SDK session object, across its links and
    // seats); a link offering a token of an older link of it is another console (a reused or guessed token).
    const origin = this.origins.get(old) ?? `origin-${old}`
    const same = this.holder.get(origin) === old
    this.origins.set(id, same ? origin : `origin-${id}`)
    if (same) m.nextId = prev.nextId
    return this.join(id, o.role ?? "controller", [0x3f7], o.maxRole ?? "controller", { token: o.token ?? prev.token(), ...(lastSeq < 0 ? {} : { lastSeq }) })
  }

  /** The link ends; "closed" is the console closing it, "error" a network loss (the seat stays resumable). */
  leave(id: string, cause: "closed" | "error" | "evicted" | "slow-consumer" | "protocol" = "closed"): void {
    const m = this.clients.get(id)
    if (m !== undefined && m.closed === null) m.closed = { code: "left", detail: "" }
    this.departed.add(id)
    this.step({ _tag: "ClientLeft", client: id, cause })
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

  /** The console confirms every message it has whole (what the SDK's `got` says). */
  got(id: string): SessionCommand[] {
    return this.frame(id, { t: "got", seq: this.clients.get(id)!.lastWholeSeq() })
  }

  /**
   * A crash: workerd dies with every socket, the frames it handed to them last never arrive; the actor comes back from
   * its last Persist with no link.
   */
  crash(): SessionCommand[] {
    for (const m of this.clients.values()) if (m.closed === null) { m.closed = { code: "crash", detail: "" }; this.departed.add(m.id) }
    this.bridge.connected = false
    this.bridge.portBuf.clear()
    this.losing.clear()
    return this.restart()
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
