// The console's session with one VM's agent through the relay: link lifecycle (hello/welcome, resume, reconnect),
// dispatch of relay frames, roles, and the typed agent API (clipboard, monitors, files, mouse) over AgentPeer.
import { LINK_VERSION, MAX_FRAME_DATA_BYTES, type ClientToRelay, type Policy, type RelayToClient, type Role } from "../link/types.ts"
import { buildCaps } from "../protocol/caps.ts"
import { Cap, ClipboardType } from "../protocol/constants.ts"
import type { AgentMessage } from "../protocol/messages.ts"
import { agentHas, encodeForAgent, monitorsConfig, type MonitorConfig } from "./agent-codec.ts"
import { AgentPeer } from "./agent-peer.ts"
import { defaultWebSocket, type WebSocketLike } from "./connection.ts"
import { Emitter } from "./emitter.ts"
import { ClientError } from "./errors.ts"
import type { FileInput, FileTransfer } from "./file-transfer.ts"
import { Inbox } from "./inbox.ts"
import { Outbox } from "./outbox.ts"
import type { AgentInfo, ClipboardData, ConnectOptions, ConnectionState, MouseState, SessionEvents } from "./types.ts"
import { Link } from "./link.ts"
import { decodeRelayFrame } from "./wire.ts"

/** How long after a message ends its `got` waits for more to end (one confirmation per burst). */
const CONFIRM_DELAY_MS = 10

/** What spice-gtk announces, minus what a web console does not do (DISPLAY_CONFIG, volume sync). */
export const defaultClientCaps: ReadonlyArray<number> = buildCaps([
  Cap.MouseState, Cap.MonitorsConfig, Cap.Reply, Cap.ClipboardByDemand, Cap.ClipboardSelection, Cap.SparseMonitorsConfig,
  Cap.GuestLineendLf, Cap.MaxClipboard, Cap.MonitorsConfigPosition, Cap.FileXferDetailedErrors,
  Cap.ClipboardNoReleaseOnRegrab, Cap.ClipboardGrabSerial,
])

const MiB = 1024 * 1024

/** 128 random bits as 32 hex digits. */
const randomOrigin = (): string => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("")

export class Session extends Emitter<SessionEvents> {
  state: ConnectionState = "connecting"
  role: Role
  agent: AgentInfo = { connected: false, caps: null }
  policy: Policy | undefined
  /** The relay's id for this VM session (from its welcome). */
  sessionId: string | undefined
  readonly caps: ReadonlyArray<number>
  /**
   * Names this session object's messages for the bridge, with their ids (monotonic per session object): the bridge
   * writes a named message to the guest at most once, however often a restart makes the relay send it again.
   */
  readonly origin: string = randomOrigin()
  private readonly link: Link
  private readonly inbox: Inbox
  /** The relay takes `got` on this link (welcome.confirms); the highest seq confirmed on it; the pending `got`. */
  private confirms = false
  private confirmedSeq = -1
  private confirmTimer: ReturnType<typeof setTimeout> | undefined
  private readonly outbox: Outbox
  private readonly peer: AgentPeer

  constructor(private readonly opts: ConnectOptions) {
    super()
    this.role = opts.role ?? "controller"
    this.caps = opts.caps ?? defaultClientCaps
    const Ctor = opts.WebSocket ?? defaultWebSocket()
    if (Ctor === undefined) throw new ClientError("connect-failed", "no WebSocket implementation: pass options.WebSocket")
    this.inbox = new Inbox(opts.maxMessageBytes ?? 128 * MiB, opts.receiveWindowBytes ?? 8 * MiB, (bytes) => this.link.send({ t: "credit", bytes }))
    this.outbox = new Outbox({ maxFragment: Math.min(opts.maxFragmentBytes ?? 256 * 1024, MAX_FRAME_DATA_BYTES), send: (f) => this.link.send(f) })
    this.peer = new AgentPeer({
      opts,
      caps: this.caps,
      send: (msg, group) => this.send(msg, group),
      pendingBytes: (group) => this.outbox.pendingBytes(group),
      cancelQueued: (group, err) => this.outbox.cancel((m) => m.group === group, err),
      role: () => this.role,
      agentCaps: () => this.agent.caps,
      agentConnected: () => this.agent.connected,
      policy: () => this.policy,
      emit: (event, value) => this.emit(event, value),
    })
    this.link = new Link(opts, Ctor, {
      hello: () => this.hello(),
      frame: (bytes) => this.receive(bytes),
      down: () => {
        this.confirms = false
        if (this.confirmTimer !== undefined) clearTimeout(this.confirmTimer)
        this.confirmTimer = undefined
        this.outbox.linkClosed()
        this.peer.clipboard.interrupted(new ClientError("interrupted", "the link dropped while waiting for the guest's clipboard"))
      },
      state: (s) => this.setState(s),
      close: (info) => this.emit("close", info),
      ended: (err) => this.ended(err),
    })
  }

  /** Opens the first link; resolves at the relay's welcome, rejects if that first attempt fails. */
  start(): Promise<this> {
    return this.link.start().then(() => this)
  }

  // ------------------------------------------------------------------ public API

  /** Offers text to the guest's clipboard (CLIPBOARD_GRAB, then the data when a guest app pastes). */
  async setClipboardText(text: string, selection = 0): Promise<void> {
    this.requireAgent()
    await this.peer.clipboard.grab(selection, [{ type: ClipboardType.Utf8Text, data: this.peer.clipboard.toGuestText(text) }])
  }

  /** Offers a PNG image to the guest's clipboard. */
  async setClipboardImage(png: Uint8Array | Blob, selection = 0): Promise<void> {
    this.requireAgent()
    const data = png instanceof Uint8Array ? png : new Uint8Array(await png.arrayBuffer())
    await this.peer.clipboard.grab(selection, [{ type: ClipboardType.ImagePng, data }])
  }

  /** Offers several representations at once (VD_AGENT_CLIPBOARD_* type → bytes). */
  async setClipboard(items: ReadonlyArray<{ readonly type: number; readonly data: Uint8Array }>, selection = 0): Promise<void> {
    this.requireAgent()
    await this.peer.clipboard.grab(selection, items)
  }

  async releaseClipboard(selection = 0): Promise<void> {
    this.requireAgent()
    await this.peer.clipboard.release(selection)
  }

  /** What the guest currently offers in `selection` (from its last CLIPBOARD_GRAB), if anything. */
  guestClipboardTypes(selection = 0): ReadonlyArray<number> | undefined {
    return this.peer.clipboard.guest.get(selection)
  }

  /** Fetches the guest's clipboard in `type` (default UTF8_TEXT). Empty data means the guest had nothing to give. */
  async requestClipboard(type: number = ClipboardType.Utf8Text, selection = 0): Promise<ClipboardData> {
    this.requireAgent()
    return this.peer.clipboard.request(selection, type)
  }

  async requestClipboardText(selection = 0): Promise<string> {
    return (await this.requestClipboard(ClipboardType.Utf8Text, selection)).text ?? ""
  }

  /** Sends MONITORS_CONFIG; resolves when the agent replies SUCCESS. */
  async setMonitors(monitors: ReadonlyArray<MonitorConfig>): Promise<void> {
    this.requireAgent()
    if (!agentHas(this.agent.caps, Cap.MonitorsConfig)) throw new ClientError("not-supported", "the agent does not take monitor configs")
    if (monitors.length === 0 || monitors.length > 16) throw new ClientError("rejected", "between 1 and 16 monitors")
    const { reply, sendFailed } = this.peer.replies.expect(this.opts.replyTimeoutMs ?? 15_000, "monitors config")
    await this.send(monitorsConfig(monitors)).catch(sendFailed)
    return reply
  }

  /** One monitor of `width` × `height` (e.g. "fit to window"). */
  setResolution(width: number, height: number): Promise<void> {
    return this.setMonitors([{ width: Math.max(1, Math.round(width)), height: Math.max(1, Math.round(height)) }])
  }

  /** Starts a file transfer into the guest's transfer folder; watch the returned transfer or the file events. */
  sendFile(file: FileInput): FileTransfer {
    const refusal = this.fileRefusal()
    return refusal === undefined ? this.peer.files.start(file) : this.peer.files.refuse(file, refusal)
  }

  sendFiles(files: Iterable<FileInput>): FileTransfer[] {
    return [...files].map((f) => this.sendFile(f))
  }

  get transfers(): ReadonlyArray<FileTransfer> {
    return this.peer.files.list
  }

  /** Absolute pointer position for the agent's tablet (coalesced by the relay: latest wins). */
  sendMouse(m: MouseState): void {
    this.requireController()
    this.outbox.pointerMoved() // bulk data yields to the pointer for a while (pointer priority, outbox.ts)
    this.link.send({ t: "mouse", x: Math.round(m.x), y: Math.round(m.y), buttons: m.buttons ?? 0, display: m.display ?? 0 })
  }

  /** Sends any agent message whole, laid out for the agent's caps (advanced: messages the SDK has no helper for). */
  async sendMessage(msg: AgentMessage): Promise<void> {
    this.requireAgent()
    await this.send(msg)
  }

  /** Asks to become the controller (the token must allow it); resolves once the relay says so. */
  takeControl(): Promise<void> {
    if (this.role === "controller") return Promise.resolve()
    if (this.state === "closed") return Promise.reject(new ClientError("closed", "the session is closed"))
    return new Promise((resolve, reject) => {
      const done = (): void => {
        offRole()
        offNotice()
        offClose()
      }
      const offRole = this.on("role", (r) => r === "controller" && (done(), resolve()))
      const offNotice = this.on("notice", (n) => n.code === "dropped-by-role" && n.id === undefined && (done(), reject(new ClientError("not-controller", n.detail, { notice: n.code }))))
      const offClose = this.on("close", (c) => !c.reconnecting && (done(), reject(new ClientError("closed", c.reason))))
      this.link.send({ t: "control" })
    })
  }

  /** Ends the session: no reconnect, every pending operation fails with reason "closed". */
  close(): Promise<void> {
    return this.link.close()
  }

  // ------------------------------------------------------------------ internals

  /** Encodes for the agent's caps and queues; resolves when the relay has it whole. */
  private send(msg: AgentMessage, group?: string): Promise<void> {
    try {
      const { type, payload } = encodeForAgent(msg, this.agent.caps)
      return this.outbox.enqueue(type, payload, group)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  private requireController(): void {
    if (this.state === "closed") throw new ClientError("closed", "the session is closed")
    if (this.role !== "controller") throw new ClientError("not-controller", "this console is a viewer: take control first")
  }

  private requireAgent(): void {
    this.requireController()
    if (!this.agent.connected) throw new ClientError("agent-not-connected", "the VM's agent is not connected")
  }

  private fileRefusal(): ClientError | undefined {
    try {
      this.requireAgent()
    } catch (err) {
      return err as ClientError
    }
    if (this.policy?.fileTransfer === false) return new ClientError("disabled", "file transfer disabled by policy")
    if (agentHas(this.agent.caps, Cap.FileXferDisabled)) return new ClientError("disabled", "file transfer disabled by policy")
    return undefined
  }

  private setState(s: ConnectionState): void {
    if (this.state === s) return
    this.state = s
    this.emit("state", s)
  }

  private hello(): ClientToRelay {
    const resume = this.link.resumeToken
    return {
      t: "hello", v: LINK_VERSION, client: this.opts.clientName ?? "vdrelay-client", role: this.role, caps: this.caps, origin: this.origin,
      ...(resume === undefined ? {} : { resume }),
      ...(resume === undefined || this.inbox.lastSeq < 0 ? {} : { lastSeq: this.inbox.lastSeq }),
      confirms: true,
    }
  }

  private receive(bytes: Uint8Array): void {
    const frame = decodeRelayFrame(bytes)
    if (typeof frame === "string") return this.link.fail(new ClientError("protocol", frame))
    this.link.heard()
    this.handle(frame)
  }

  private handle(f: RelayToClient): void {
    switch (f.t) {
      case "welcome":
        return this.welcome(f)
      case "agent":
        return this.setAgent({ connected: f.connected, caps: f.caps }, false)
      case "msg":
      case "more":
      case "abort": {
        const r = this.inbox.push(f)
        if (f.t === "abort" || f.end) this.confirmSoon()
        if (r === undefined) return
        if (r._tag === "Message") return this.peer.receive(r.message)
        if (r._tag === "Dropped") {
          const err = new ClientError("too-large", `agent message ${r.seq} dropped: ${r.reason}`)
          if (r.type !== undefined) this.peer.lost(r.type, r.head, err)
          return this.emit("error", err)
        }
        if (r._tag === "Aborted") {
          const err = new ClientError("aborted", `agent message ${r.seq} (type ${r.type}) aborted by the relay: ${r.code}`, { notice: r.code })
          // What waited for it (a clipboard request) fails now instead of waiting for an answer that will not come.
          this.peer.lost(r.type, r.head, err)
          return this.emit("error", err)
        }
        return this.link.fail(new ClientError("protocol", r.detail))
      }
      case "ack":
        return void this.outbox.ack(f.id)
      case "credit":
        return this.outbox.addCredit(f.bytes)
      case "notice":
        this.emit("notice", { code: f.code, detail: f.detail, ...(f.id === undefined ? {} : { id: f.id }), ...(f.type === undefined ? {} : { type: f.type }) })
        if (f.id !== undefined) this.outbox.notice(f.id, f.code, f.detail)
        return
      case "role":
        return this.setRole(f.role)
      case "pong":
        return
      case "error":
        return this.link.relayErrorReceived(f.code, f.detail)
    }
  }

  /**
   * Tells the relay, shortly after messages end (one `got` for a burst), every agent message up to which arrived whole:
   * until then the relay keeps them replayable, so a relay crash that loses them with the socket sends them again.
   */
  private confirmSoon(): void {
    if (!this.confirms || this.confirmTimer !== undefined) return
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = undefined
      const seq = this.inbox.lastSeq
      if (!this.confirms || seq <= this.confirmedSeq) return
      this.confirmedSeq = seq
      this.link.send({ t: "got", seq })
    }, CONFIRM_DELAY_MS)
  }

  private welcome(w: Extract<RelayToClient, { t: "welcome" }>): void {
    // The hello's lastSeq told this relay link what arrived; confirmations of this link start from there.
    this.confirms = w.confirms === true
    this.confirmedSeq = this.inbox.lastSeq
    const reconnect = this.sessionId !== undefined
    // The relay says whether it honoured our resume token: the seat (and what the agent knows of us) survived.
    const resumed = reconnect && w.resumed === true
    if (reconnect && this.sessionId !== w.session) this.inbox.forgetSeqs()
    if (reconnect && !resumed) {
      // A new seat: the agent heard CLIENT_DISCONNECTED for the old one, so what was queued for it (laid out for the
      // old caps exchange and serials) must not be replayed, and what depended on it is over.
      const err = new ClientError("interrupted", "the link dropped and the relay did not keep this console's seat")
      this.outbox.failAll(err)
      this.peer.reset(err, false, false)
    }
    const wasController = this.role === "controller" && this.agent.connected
    this.sessionId = w.session
    this.policy = w.policy
    this.link.welcomed(w.resume)
    this.inbox.linkOpened()
    this.outbox.linkOpened(w.credit)
    this.emit("policy", w.policy)
    if (w.role !== this.role) this.setRole(w.role, false)
    this.setAgent(w.agent, !resumed || !wasController)
  }

  private setRole(role: Role, announce = true): void {
    const was = this.role
    this.role = role
    if (was === role) return
    this.emit("role", role)
    if (role === "controller") {
      if (announce) this.peer.announce()
    } else {
      const err = new ClientError("not-controller", "this console became a viewer")
      this.outbox.failAll(err)
      this.peer.files.failAll(err)
    }
  }

  /** `announce`: whether a controller should (re)introduce itself to the agent with caps request=1. */
  private setAgent(next: AgentInfo, announce: boolean): void {
    const prev = this.agent
    this.agent = next
    if (prev.connected && !next.connected) this.peer.reset(new ClientError("agent-not-connected", "the agent disconnected"), true)
    if (next.connected && this.role === "controller") this.peer.files.agentBack()
    // The caps exchange goes first, so that whatever a listener of "agent" sends (a clipboard grab) follows it: the agent
    // resets its grab serials at our request=1, and counts the grab in the new exchange as we do.
    if (next.connected && (!prev.connected || announce) && this.role === "controller") this.peer.announce()
    else if (next.caps !== null) this.peer.exchangeReady()
    this.emit("agent", next)
  }

  private ended(err: ClientError): void {
    this.outbox.failAll(err)
    this.peer.reset(err, false, false)
  }
}

export type { WebSocketLike }
