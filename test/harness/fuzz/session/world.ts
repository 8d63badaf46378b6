// The session actor driven from outside as the VmSession Durable Object drives it, with every command checked: frames
// must encode and decode (what the adapter sends), clients and the guest only ever see whole messages (ClientView,
// GuestView), attachments and persisted state stay small, memory held by the actor stays under its budget, and a
// simulated eviction rebuilds the actor from the last Persist and attachments exactly as the adapter does.
import { concatBytes } from "../../../../src/protocol/bytes.ts"
import { decodeBridgeToRelay, encodeBridgeToRelay } from "../../../../src/link/bridge-codec.ts"
import { decodeClientToRelay, encodeClientToRelay } from "../../../../src/link/client-codec.ts"
import { defaultPolicy, type BridgeToRelay, type ClientToRelay, type Policy, type RelayToBridge, type RelayToClient, type Role } from "../../../../src/link/types.ts"
import {
  initialState,
  persisted,
  restore,
  step,
  type BridgeLinkAttachment,
  type ClientLinkAttachment,
  type Limits,
  type PersistedState,
  type SessionCommand,
  type SessionEvent,
  type SessionState,
} from "../../../../src/session/index.ts"
import { check, type Features } from "../engine.ts"
import { ClientView } from "./client-view.ts"
import { GuestView } from "./guest-view.ts"
import { MAX_ATTACHMENT, MAX_PERSISTED, TRACE, checkBudget, injectDefect, roundTripBridge, roundTripClient, show, type Mutant } from "./inspect.ts"

export type { Mutant } from "./inspect.ts"

export interface WorldOptions {
  readonly limits?: Partial<Limits>
  readonly policy?: Policy
  readonly mutant?: Mutant
}

export class SessionWorld {
  state: SessionState
  now = 1_000
  readonly clients = new Map<string, ClientView>()
  readonly guest = new GuestView()
  bridgeUp = false
  /** The bridge's agent stream per epoch: bytes it has sent (it can replay any of them). */
  epoch = 1
  agentBytes: Uint8Array[] = []
  agentPos = 0
  acked = 0
  /** Whether hostile bytes went into this epoch's agent stream (then delivered content is not compared). */
  tainted = false
  /** Whole port-1 messages the agent sent (valid ops only). */
  readonly sentToAgent: Array<{ epoch: number; type: number; hash: number }> = []
  /** Whole messages consoles sent, with the role they had when they started them. */
  readonly sentByClients: Array<{ controller: boolean; type: number; hash: number }> = []
  taintedEver = false
  /** Consoles sent hostile frames: guest-bound content is then not compared with what they meant to send. */
  clientTainted = false
  lastPersist: PersistedState
  readonly attachments = new Map<string, ClientLinkAttachment>()
  bridgeAttachment: BridgeLinkAttachment | undefined
  steps = 0
  private clientSeq = 0
  /** The link that holds each origin now: a console (SDK session object) has one link at a time. */
  private readonly originHolder = new Map<string, string>()
  private queue: SessionEvent[] = []
  private draining = false
  /** `wrote` of the last bridge hello: where the relay's guest-bound positions restart. */
  private helloWrote = 0
  readonly limits: Limits

  private readonly mutant: Mutant | undefined

  constructor(
    readonly f: Features,
    o: WorldOptions = {},
  ) {
    this.mutant = o.mutant
    this.state = initialState({ session: "fuzz", policy: o.policy ?? defaultPolicy, now: this.now, ...(o.limits !== undefined ? { limits: o.limits } : {}) })
    this.limits = this.state.limits
    this.lastPersist = persisted(this.state)
  }

  tick(ms: number): void {
    this.now += ms
  }

  /** Like the adapter's SessionHost: events raised while commands run are stepped after them, in order. */
  feed(event: SessionEvent): void {
    this.queue.push(event)
    if (this.draining) return
    this.draining = true
    try {
      for (let e = this.queue.shift(); e !== undefined; e = this.queue.shift()) {
        this.steps++
        if (TRACE) console.log(">", show(e))
        const r = step(this.state, e)
        this.state = r.state
        this.run(r.commands)
      }
    } finally {
      this.draining = false
      this.queue = []
    }
  }

  run(commands: ReadonlyArray<SessionCommand>): void {
    if (TRACE) for (const c of commands) console.log("  <", show(c))
    for (const c of commands) this.command(c)
    checkBudget(this.state)
  }

  private command(c: SessionCommand): void {
    if (this.mutant !== undefined && injectDefect(this.mutant, c, (x) => this.command(x))) return
    switch (c._tag) {
      case "SendToClient": {
        const view = this.clients.get(c.client)
        check(view !== undefined, `frame for unknown client ${c.client}`)
        const frame = roundTripClient(c.frame)
        this.f.edge(`c:${frame.t}`)
        return view!.receive(frame)
      }
      case "CloseClient": {
        const view = this.clients.get(c.client)
        check(view !== undefined, `close of unknown client ${c.client}`)
        this.f.add(`close:${c.code}`)
        view!.closed = true
        this.attachments.delete(c.client)
        return
      }
      case "SendToBridge": {
        check(this.bridgeUp, `${c.frame.t} frame with no bridge link`)
        const frame = roundTripBridge(c.frame)
        this.f.edge(`b:${frame.t}`)
        return this.toBridge(frame)
      }
      case "CloseBridge":
        check(this.bridgeUp, "close of a bridge link that is not there")
        this.f.add(`bridge-close:${c.code}`)
        this.bridgeUp = false
        this.bridgeAttachment = undefined
        return
      case "Persist": {
        const size = JSON.stringify(c.state).length
        check(size <= MAX_PERSISTED, `persisted state of ${size} bytes`)
        this.lastPersist = structuredClone(c.state)
        return
      }
      case "SetAttachment": {
        const size = JSON.stringify(c.data).length
        check(size <= MAX_ATTACHMENT, `attachment of ${size} bytes (cap ${MAX_ATTACHMENT})`)
        if (c.link === "bridge") {
          check(this.bridgeUp && c.data.kind === "bridge", "bridge attachment without a bridge link")
          this.bridgeAttachment = structuredClone(c.data) as BridgeLinkAttachment
        } else {
          const view = this.clients.get(c.link.client)
          check(view !== undefined && !view.closed && c.data.kind === "client", `attachment for a client that is not there`)
          this.attachments.set(c.link.client, structuredClone(c.data) as ClientLinkAttachment)
        }
        return
      }
      case "Metric":
        return this.f.add(`m:${c.name}${c.labels === undefined ? "" : JSON.stringify(c.labels)}`)
      case "Log":
      case "SetTimer":
        return
    }
  }

  private toBridge(f: RelayToBridge): void {
    switch (f.t) {
      case "welcome":
        this.guest.reset(f.epoch, this.helloWrote)
        this.acked = Math.max(this.acked, f.ack)
        return this.replayFrom(f.ack)
      case "rewind":
        check(f.epoch === this.epoch, `rewind for epoch ${f.epoch}`)
        return this.replayFrom(f.pos)
      case "ack":
        // Hostile data frames claim positions the bridge never sent: only a clean stream is held to this.
        if (!this.tainted) check(f.epoch === this.epoch && f.pos <= this.agentPos, `ack ${f.pos} of epoch ${f.epoch}; sent ${this.agentPos} in ${this.epoch}`)
        this.acked = Math.max(this.acked, f.pos)
        return
      case "write":
      case "abort":
        return this.guest.receive(f)
      default:
        return
    }
  }

  /** The bridge re-sends its retained agent bytes from `pos` (after welcome or rewind), as one data frame. */
  private replayFrom(pos: number): void {
    if (pos >= this.agentPos) return
    const all = concatBytes(this.agentBytes)
    this.feed({ _tag: "BridgeFrameReceived", now: this.now, frame: { t: "data", epoch: this.epoch, pos, bytes: all.slice(pos) } })
  }

  bridgeHello(epoch: number, chardev: boolean, port: "open" | "closed" | "unknown", wrote?: number): void {
    const w = wrote ?? (this.guest.epoch === epoch ? this.guest.wpos : 0)
    // As in the adapter: the hello is decoded first; one that does not decode closes the link before the actor sees it.
    const hello = decodeBridgeToRelay(encodeBridgeToRelay({ t: "hello", v: 1, bridge: "bridge-1", epoch, chardev, from: 0, wrote: w, port }))
    if (hello._tag !== "Ok" || hello.value.t !== "hello") return this.f.add("hello-undecodable")
    if (this.bridgeUp) this.bridgeDrop("replaced")
    if (epoch !== this.epoch) {
      this.epoch = epoch
      this.agentBytes = []
      this.agentPos = 0
      this.acked = 0
      this.tainted = false
    }
    this.bridgeUp = true
    this.helloWrote = w
    this.feed({ _tag: "BridgeAttached", now: this.now, hello: hello.value })
  }

  taint(): void {
    this.tainted = true
    this.taintedEver = true
  }

  /** The bridge reports a new chardev connection: a new epoch whose positions (both ways) start at 0. */
  newEpochFromChardev(epoch: number): void {
    // A frame with an epoch the link codec refuses never reaches the actor: nothing changes.
    if (!Number.isSafeInteger(epoch) || epoch < 0) return
    this.epoch = epoch
    this.agentBytes = []
    this.agentPos = 0
    this.acked = 0
    this.tainted = false
    this.helloWrote = 0
  }

  /** A frame from the bridge, through the link codec as the adapter receives it (undecodable → FrameRejected). */
  bridgeFrame(frame: BridgeToRelay): void {
    if (!this.bridgeUp) return
    const d = decodeBridgeToRelay(encodeBridgeToRelay(frame))
    if (d._tag === "Invalid") return this.feed({ _tag: "FrameRejected", now: this.now, from: "bridge", detail: d.detail })
    this.feed({ _tag: "BridgeFrameReceived", now: this.now, frame: d.value })
  }

  /** The agent writes `bytes` into the chardev; the bridge forwards them at the next position. */
  agentSends(bytes: Uint8Array, hostile: boolean): void {
    if (hostile) this.taint()
    const pos = this.agentPos
    this.agentBytes.push(bytes)
    this.agentPos += bytes.length
    this.bridgeFrame({ t: "data", epoch: this.epoch, pos, bytes })
  }

  bridgeDrop(cause: "error" | "replaced" | "closed" = "error"): void {
    if (!this.bridgeUp) return
    this.bridgeUp = false
    this.bridgeAttachment = undefined
    this.feed({ _tag: "BridgeDetached", now: this.now, cause })
  }

  join(role: Role, maxRole: Role, caps: number[], resume?: { token: string; lastSeq: number; inherit?: Iterable<number>; origin?: string }): ClientView {
    const id = `c${++this.clientSeq}`
    const view = new ClientView(id, maxRole)
    this.clients.set(id, view)
    if (resume?.origin !== undefined) view.origin = resume.origin
    this.originHolder.set(view.origin, id)
    const hello = { t: "hello" as const, v: 1, client: id, role, caps, origin: view.origin, ...(resume === undefined ? {} : { resume: resume.token, ...(resume.lastSeq >= 0 ? { lastSeq: resume.lastSeq } : {}) }) }
    if (resume !== undefined) view.floor = resume.lastSeq
    for (const seq of resume?.inherit ?? []) view.inheritedOpen.add(seq)
    this.feed({ _tag: "ClientJoined", now: this.now, client: id, maxRole, hello, resumeToken: `tok-${id}-0123456789abcdef0123456789abcdef` })
    return view
  }

  /**
   * A console's link is lost and it reconnects with its resume token (or, `forged`, someone else's guess); like the
   * SDK, a resumed link resends every message not yet answered, a new seat fails them locally.
   */
  resume(old: ClientView, afterMs: number, forged: boolean): ClientView {
    if (!old.closed) this.leave(old, "error")
    this.tick(afterMs)
    this.feed({ _tag: "TimerFired", now: this.now })
    const lastSeq = old.lastWholeSeq()
    const v = this.join(old.role === "controller" ? "controller" : "viewer", old.maxRole, [0x000355f7], { token: forged ? "tok-forged-0123456789abcdef0123456789" : old.token, lastSeq, inherit: old.open.keys(), ...(forged || this.originHolder.get(old.origin) !== old.id ? {} : { origin: old.origin }) })
    this.f.add(`resumed:${v.resumed}`)
    v.nextId = old.nextId
    old.pending.clear()
    if (!v.resumed || v.closed) return v
    for (const [id, m] of [...old.unanswered].sort((a, b) => a[0] - b[0])) {
      v.unanswered.set(id, m)
      this.clientSends(v, { t: "msg", id, type: m.type, size: m.payload.length, data: m.payload, end: true }, old)
    }
    return v
  }

  live(): ClientView[] {
    return [...this.clients.values()].filter((c) => !c.closed)
  }

  leave(view: ClientView, cause: "closed" | "error" = "closed"): void {
    if (view.closed) return
    view.closed = true
    this.attachments.delete(view.id)
    this.feed({ _tag: "ClientLeft", now: this.now, client: view.id, cause })
  }

  /** A console sends a frame; msg frames are booked so that their answers can be checked. */
  /** `resendOf`: the console that first sent this message (an SDK resend after a resume keeps the original's role). */
  clientSends(view: ClientView, frame: ClientToRelay, resendOf?: ClientView): void {
    if (view.closed) return
    if (frame.t === "msg") {
      view.sending(frame.id)
      const viewer = resendOf === undefined ? view.role === "viewer" : resendOf.sentAsViewer.has(frame.id)
      if (viewer) view.sentAsViewer.add(frame.id)
      else view.sentAsViewer.delete(frame.id)
    }
    const d = decodeClientToRelay(encodeClientToRelay(frame))
    if (d._tag === "Invalid") return this.feed({ _tag: "FrameRejected", now: this.now, from: { client: view.id }, detail: d.detail })
    if (frame.t === "msg" || frame.t === "more") view.creditOwed += frame.data.length
    if (frame.t === "msg") view.openOut = frame.end ? null : frame.id
    else if (((frame.t === "more" && frame.end) || frame.t === "abort") && frame.id === view.openOut) {
      // A console that gives its own message up expects no answer for it (whoever sent the abort frame).
      if (frame.t === "abort") {
        view.pending.delete(frame.id)
        view.unanswered.delete(frame.id)
      }
      view.openOut = null
    }
    this.feed({ _tag: "ClientFrameReceived", now: this.now, client: view.id, frame: d.value })
  }

  /** Eviction or hibernation: the actor is rebuilt from the last Persist and the attachments of the open links. */
  evict(): void {
    this.f.add("evict")
    const clients = this.live().filter((c) => this.attachments.has(c.id))
    // Links without an attachment (still in their handshake) are closed by the adapter before restore.
    for (const c of this.live()) if (!this.attachments.has(c.id)) c.closed = true
    const r = restore(this.lastPersist, { ...(this.bridgeUp && this.bridgeAttachment !== undefined ? { bridge: this.bridgeAttachment } : {}), clients: clients.map((c) => this.attachments.get(c.id)!) }, this.now, { limits: this.limits })
    if (this.bridgeUp && this.bridgeAttachment === undefined) this.bridgeUp = false
    this.state = r.state
    // Events the restore's commands cause (the bridge replaying after `rewind`) come after all of them, as in the DO.
    this.draining = true
    try {
      this.run(r.commands)
    } finally {
      this.draining = false
    }
    const queued = this.queue
    this.queue = []
    for (const e of queued) this.feed(e)
  }
}
