// An in-test relay speaking the client link over a real WebSocket server: records what the SDK sends, checks it never
// overspends its credit, reassembles its messages, and lets a test script the relay's side (welcome, agent messages
// fragmented at will and within the SDK's credit, acks, notices, closes).
import { WebSocketServer, type WebSocket } from "ws"
import { decodeClientToRelay, encodeRelayToClient } from "../../../src/link/client-codec.ts"
import { defaultPolicy, LINK_VERSION, type ClientToRelay, type RelayToClient } from "../../../src/link/types.ts"
import { concatBytes } from "../../../src/protocol/bytes.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

export interface WholeMessage {
  readonly id: number
  readonly type: number
  readonly payload: Uint8Array
}

type Hello = Extract<ClientToRelay, { t: "hello" }>

export class FakeLink {
  readonly frames: ClientToRelay[] = []
  readonly messages: WholeMessage[] = []
  /** Credit violations: the SDK sent message data beyond what it was granted. */
  readonly violations: string[] = []
  /** Client→relay credit left, bytes. */
  clientCredit = 0
  /** Relay→client credit the SDK granted and the fake has not spent, bytes. */
  relayCredit = 0
  autoAck = true
  closed: { code: number; reason: string } | undefined
  private partial = new Map<number, { type: number; size: number; parts: Uint8Array[]; fill: number }>()
  private waiters: Array<{ pred: (f: ClientToRelay) => boolean; resolve: (f: ClientToRelay) => void; from: number }> = []
  private creditWaiters: Array<() => void> = []
  private closeWaiters: Array<() => void> = []
  private seq = 0

  constructor(
    readonly ws: WebSocket,
    readonly protocols: ReadonlyArray<string>,
    readonly url: string,
  ) {
    // The relay's own decoder checks every frame the SDK sends, field by field.
    ws.on("message", (data: Buffer) => {
      const f = decodeClientToRelay(new Uint8Array(data))
      if (f._tag === "Ok") this.receive(f.value)
      else this.violations.push(`undecodable frame: ${f.reason} ${f.detail}`)
    })
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      for (const w of this.closeWaiters.splice(0)) w()
    })
  }

  get hello(): Hello | undefined {
    return this.frames.find((f): f is Hello => f.t === "hello")
  }

  send(frame: RelayToClient): void {
    this.ws.send(encodeRelayToClient(frame))
  }

  welcome(o: Partial<Extract<RelayToClient, { t: "welcome" }>> = {}): void {
    this.clientCredit = o.credit ?? 4 * 1024 * 1024
    this.send({
      t: "welcome", v: LINK_VERSION, session: "s-1", role: this.hello?.role ?? "controller",
      agent: { connected: true, caps: [SPICE_VDAGENT_CAPS] }, policy: defaultPolicy, credit: this.clientCredit, resume: "r-1", ...o,
    })
  }

  grantCredit(bytes: number): void {
    this.clientCredit += bytes
    this.send({ t: "credit", bytes })
  }

  /** The next frame (from `from`, default: after those seen) that satisfies `pred`. */
  next<T extends ClientToRelay>(pred: (f: ClientToRelay) => f is T, from?: number): Promise<T>
  next(pred: (f: ClientToRelay) => boolean, from?: number): Promise<ClientToRelay>
  next(pred: (f: ClientToRelay) => boolean, from = this.frames.length): Promise<ClientToRelay> {
    const seen = this.frames.slice(from).find(pred)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve) => this.waiters.push({ pred, resolve, from }))
  }

  /** The next whole message of `type` (counting from message index `from`). */
  async nextMessage(type: number, from = this.messages.length): Promise<WholeMessage> {
    for (;;) {
      const m = this.messages.slice(from).find((x) => x.type === type)
      if (m !== undefined) return m
      await this.next((f) => (f.t === "msg" || f.t === "more") && f.end)
    }
  }

  whenClosed(): Promise<void> {
    return this.closed !== undefined ? Promise.resolve() : new Promise((r) => this.closeWaiters.push(r))
  }

  /** Sends one agent message as fragments of the given sizes (the rest in one last fragment), within relay credit. */
  async agentMessage(type: number, payload: Uint8Array, cuts: ReadonlyArray<number> = []): Promise<number> {
    const seq = ++this.seq
    await this.fragments(seq, type, payload, cuts)
    return seq
  }

  async fragments(seq: number, type: number, payload: Uint8Array, cuts: ReadonlyArray<number>, stopAt?: number): Promise<void> {
    const sizes = [...cuts.filter((c) => c > 0)]
    let at = 0, first = true
    while (first || at < payload.length) {
      if (stopAt !== undefined && at >= stopAt) return
      const n = Math.min(sizes.shift() ?? payload.length, payload.length - at)
      while (this.relayCredit < n) await new Promise<void>((r) => this.creditWaiters.push(r))
      this.relayCredit -= n
      const data = payload.subarray(at, at + n)
      const end = at + n === payload.length
      this.send(first ? { t: "msg", seq, type, size: payload.length, data, end } : { t: "more", seq, data, end })
      first = false
      at += n
    }
  }

  nextSeq(): number {
    return ++this.seq
  }

  setSeq(seq: number): void {
    this.seq = seq
  }

  /** Drops the TCP connection without a closing handshake (the SDK sees 1006). */
  terminate(): Promise<void> {
    this.ws.terminate()
    return this.whenClosed()
  }

  close(code = 1001, reason = ""): Promise<void> {
    this.ws.close(code, reason)
    return this.whenClosed()
  }

  private receive(f: ClientToRelay): void {
    this.frames.push(f)
    switch (f.t) {
      case "credit":
        this.relayCredit += f.bytes
        for (const w of this.creditWaiters.splice(0)) w()
        break
      case "msg":
        this.spend(f.data.length)
        this.partial.set(f.id, { type: f.type, size: f.size, parts: [], fill: 0 })
        this.append(f.id, f.data, f.end)
        break
      case "more":
        this.spend(f.data.length)
        this.append(f.id, f.data, f.end)
        break
      case "abort":
        this.partial.delete(f.id)
        break
    }
    const index = this.frames.length - 1
    for (const w of [...this.waiters]) {
      if (index >= w.from && w.pred(f)) {
        this.waiters.splice(this.waiters.indexOf(w), 1)
        w.resolve(f)
      }
    }
  }

  private spend(n: number): void {
    this.clientCredit -= n
    if (this.clientCredit < 0) this.violations.push(`overspent credit by ${-this.clientCredit} bytes`)
  }

  private append(id: number, data: Uint8Array, end: boolean): void {
    const p = this.partial.get(id)
    if (p === undefined) return void this.violations.push(`fragment for unknown message ${id}`)
    p.parts.push(new Uint8Array(data))
    p.fill += data.length
    if (!end) return
    this.partial.delete(id)
    if (p.fill !== p.size) this.violations.push(`message ${id} ended at ${p.fill} of ${p.size}`)
    this.messages.push({ id, type: p.type, payload: concatBytes(p.parts) })
    if (this.autoAck) this.send({ t: "ack", id })
  }
}

export class FakeRelay {
  readonly links: FakeLink[] = []
  private waiters: Array<(l: FakeLink) => void> = []
  /** Set to refuse upgrades with this HTTP status. */
  refuse: number | undefined

  private constructor(private readonly wss: WebSocketServer) {
    wss.on("connection", (ws, req) => {
      const protocols = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim())
      const link = new FakeLink(ws, protocols, req.url ?? "")
      this.links.push(link)
      for (const w of this.waiters.splice(0)) w(link)
    })
  }

  static start(): Promise<FakeRelay> {
    return new Promise((resolve) => {
      let relay: FakeRelay
      const wss = new WebSocketServer({
        host: "127.0.0.1",
        port: 0,
        handleProtocols: (protocols) => (protocols.has("vdrelay.v1") ? "vdrelay.v1" : false),
        verifyClient: (_info, done) => (relay.refuse === undefined ? done(true) : done(false, relay.refuse)),
      })
      relay = new FakeRelay(wss)
      wss.on("listening", () => resolve(relay))
    })
  }

  get url(): string {
    const { port } = this.wss.address() as { port: number }
    return `ws://127.0.0.1:${port}/v1/connect`
  }

  /** The next link to connect (or the one already connected at index `index`). */
  link(index = this.links.length): Promise<FakeLink> {
    const l = this.links[index]
    if (l !== undefined) return Promise.resolve(l)
    return new Promise((resolve) => this.waiters.push((x) => (this.links.length - 1 === index ? resolve(x) : void this.link(index).then(resolve))))
  }

  /** A link that has said hello. */
  async helloed(index = this.links.length): Promise<FakeLink> {
    const l = await this.link(index)
    await l.next((f) => f.t === "hello", 0)
    return l
  }

  close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate()
    return new Promise((r) => this.wss.close(() => r()))
  }
}
