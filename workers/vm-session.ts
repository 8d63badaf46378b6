// The VmSession Durable Object (one per tenant/VM): a thin adapter that turns WebSocket Hibernation API events into
// session actor events and runs the actor's commands (session-host.ts). State is rebuilt in the constructor from
// storage and the attachments of the sockets that survived hibernation or eviction.
import { DurableObject } from "cloudflare:workers"
import { DEFAULT_SKEW_SECONDS } from "../src/auth/token.ts"
import { decodeBridgeToRelay, encodeRelayToBridge } from "../src/link/bridge-codec.ts"
import { decodeClientToRelay, encodeRelayToClient } from "../src/link/client-codec.ts"
import { linkErrorOfDecode } from "../src/link/codec.ts"
import { LINK_PING, LINK_PONG } from "../src/link/heartbeat.ts"
import { defaultPolicy, type LinkErrorCode, type Role } from "../src/link/types.ts"
import { initialState, persisted, restore, type BridgeLinkAttachment, type ClientLinkAttachment } from "../src/session/index.ts"
import { isSessionBridge, isSessionClient, readAttachment, type EdgeAttachment, type LinkInfo } from "./attachments.ts"
import { readForwardedClaims, type ForwardedClaims } from "./forward.ts"
import { mergePolicy, statusOf } from "./status.ts"
import { SessionHost } from "./session-host.ts"
import { SessionStore } from "./session-store.ts"
import { BRIDGE_JOINS, CONSOLE_JOINS, LinkLimiter, linkFramesSpec, TokenBucket } from "./rate-limit.ts"
import { audit } from "./audit.ts"
import { BridgeProofs } from "./bridge-proof.ts"
import { LinkAuth, isRevocation } from "./link-auth.ts"

/**
 * A link that has not said hello after this long is closed (1008) when the next link is accepted: idle sockets cost
 * nothing while hibernated, so sweeping on accept bounds their number without an alarm of our own.
 */
const HELLO_TIMEOUT_MS = 30_000

/** A seat's resume token: 128 random bits; the actor is deterministic, so randomness comes from here. */
const newResumeToken = (): string => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("")

export class VmSession extends DurableObject<Env> {
  private readonly store: SessionStore
  private host!: SessionHost
  private readonly joins = { console: new TokenBucket(CONSOLE_JOINS, Date.now()), bridge: new TokenBucket(BRIDGE_JOINS, Date.now()) }
  private readonly frames: LinkLimiter
  /** Tokens on open links: expiry, refresh over the link, revocation (link-auth.ts); owns the object's alarm. */
  private readonly auth: LinkAuth
  private readonly proofs: BridgeProofs

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.frames = new LinkLimiter(linkFramesSpec(env.VDRELAY_LINK_FRAMES))
    this.store = new SessionStore(ctx.storage.sql)
    const authClose = (ws: WebSocket, detail: string) => {
      const info = this.host.links.get(ws)
      const frame = info?.kind === "client" ? encodeRelayToClient({ t: "error", code: "auth", detail }) : encodeRelayToBridge({ t: "error", code: "auth", detail })
      if (info !== undefined) this.host.close(ws, "auth", detail, frame)
    }
    const count = (key: string) => this.host.count(key, 1)
    // Frames held while a proof or a fresh token was checked go through the usual path afterwards, in order.
    const replay = (ws: WebSocket, data: ArrayBuffer) => {
      const info = this.host.links.get(ws)
      if (info?.kind === "bridge") this.bridgeFrame(ws, info, data, Date.now())
      else if (info?.kind === "client") this.clientFrame(ws, info, data, Date.now())
    }
    this.auth = new LinkAuth(ctx, env, {
      close: authClose,
      setAlarm: (at) => void ctx.storage.setAlarm(at),
      deleteAlarm: () => void ctx.storage.deleteAlarm(),
      count,
      replay,
    })
    this.proofs = new BridgeProofs({ refuse: authClose, count, replay })
    // Heartbeats of both links are answered by the edge without running this object (or waking it from hibernation).
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(LINK_PING, LINK_PONG))
    void ctx.blockConcurrencyWhile(async () => this.rebuild())
  }

  /** Storage + surviving sockets → actor state. Joined links the session cannot rebuild are closed first. */
  private rebuild(): void {
    const now = Date.now()
    const stored = this.store.loadState()
    const sockets = this.ctx.getWebSockets().filter((ws) => ws.readyState === WebSocket.OPEN)
    const attachments = new Map(sockets.map((ws) => [ws, readAttachment(ws)] as const))
    const clients: ClientLinkAttachment[] = []
    let bridge: BridgeLinkAttachment | undefined
    for (const [ws, a] of attachments) {
      if (isSessionClient(a)) clients.push(a)
      else if (isSessionBridge(a) && bridge === undefined) bridge = a
      else if (a === undefined || a.kind !== "pending-client" && a.kind !== "pending-bridge") {
        // Joined, but nothing the session can rebuild it from (or a second bridge): the peer reconnects and resumes.
        attachments.delete(ws)
        ws.close(1011, "link state lost")
      }
    }
    const fresh = initialState({ session: this.ctx.id.toString(), policy: defaultPolicy, now })
    const r = stored === null && sockets.length === 0 ? { state: fresh, commands: [] } : restore(stored ?? persisted(fresh), { bridge, clients }, now)
    this.host = new SessionHost(r.state, this.store, (at) => this.auth.actorTimer(at), this.store.loadCounters())
    // Each construction is a start or a wake from hibernation: the idle-cost figure counts them (docs/benchmarks.md).
    this.host.count("object.starts", 1)
    for (const [ws, a] of attachments) if (a !== undefined) this.host.adopt(ws, a)
    this.host.runAll(r.commands)
  }

  override async fetch(request: Request): Promise<Response> {
    const claims = readForwardedClaims(request)
    if (claims === undefined) return new Response("bad internal request", { status: 400 })
    const path0 = new URL(request.url).pathname
    if (path0 === "/revoke") {
      const rule: unknown = await request.json()
      return isRevocation(rule) ? Response.json(this.auth.revoke(rule)) : new Response("bad revocation", { status: 400 })
    }
    const revoked = this.auth.revoked(claims)
    if (revoked !== undefined) return new Response(`${revoked}\n`, { status: 401 })
    if (claims.once === true && !this.store.useOnce(claims.jti, claims.exp, Math.floor(Date.now() / 1000), DEFAULT_SKEW_SECONDS)) {
      return new Response("token already used", { status: 401 })
    }
    const path = new URL(request.url).pathname
    if (path === "/console" || path === "/agent") {
      const joins = path === "/agent" ? this.joins.bridge : this.joins.console
      if (!joins.take(Date.now())) {
        this.host.count("links.refused.rate-limit", 1)
        return new Response("too many new links to this VM\n", { status: 429, headers: { "Retry-After": String(joins.retryAfter()) } })
      }
      return this.accept(path === "/agent", claims)
    }
    if (path === "/status") return Response.json(this.status(claims))
    if (path === "/policy") return this.putPolicy(await request.json())
    return new Response("not found", { status: 404 })
  }

  private accept(bridge: boolean, claims: ForwardedClaims): Response {
    const now = Date.now()
    this.host.closeSilentLinks(now - HELLO_TIMEOUT_MS)
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket]
    const proof = bridge ? this.proofs.pending(claims) : undefined
    const attachment: EdgeAttachment = bridge
      ? { kind: "pending-bridge", since: now, ...(proof !== undefined ? { proof } : {}) }
      : { kind: "pending-client", client: crypto.randomUUID(), maxRole: claims.role as Role, since: now }
    const linkTag = this.auth.opened(claims)
    this.ctx.acceptWebSocket(server, bridge ? ["bridge", linkTag] : ["client", attachment.kind === "pending-client" ? attachment.client : "", linkTag])
    server.binaryType = "arraybuffer"
    server.serializeAttachment(attachment)
    this.host.adopt(server, attachment)
    this.auth.schedule()
    if (proof !== undefined) this.proofs.challenge(server, proof)
    this.host.count(bridge ? "links.opened.bridge" : "links.opened.client", 1)
    // No permessage-deflate: workerd accepts a client's offer unless the response names the extensions it takes, and
    // deflating bulk clipboard/file bytes in the object's thread halved its throughput (docs/benchmarks.md). An
    // extension list without permessage-deflate makes workerd negotiate none.
    const headers: Record<string, string> = { "Sec-WebSocket-Extensions": "identity" }
    if (claims.protocol !== undefined) headers["Sec-WebSocket-Protocol"] = claims.protocol
    return new Response(null, { status: 101, webSocket: client, headers })
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const info = this.host.links.get(ws)
    if (info === undefined) return ws.close(1011, "unknown link")
    const now = Date.now()
    if (typeof message === "string") {
      // The auto-response answers pings; one that reaches the object anyway (a runtime without it) is answered here.
      if (message === LINK_PING) {
        this.host.count("pings.in-object", 1)
        return ws.send(LINK_PONG)
      }
      return this.reject(ws, info, "protocol", "text frames are not part of the protocol", now)
    }
    if (!this.frames.allow(ws, now)) {
      this.host.count(`frames.rate-limited.${info.kind}`, 1)
      const detail = "rate limit: too many frames on this link"
      const frame = info.kind === "client" ? encodeRelayToClient({ t: "error", code: "policy", detail }) : encodeRelayToBridge({ t: "error", code: "policy", detail })
      return this.host.close(ws, "policy", detail, frame)
    }
    this.host.countFrame("in", info.kind, message.byteLength)
    if (this.auth.held(ws, message)) return
    if (info.kind === "bridge" && !info.joined && this.proofs.gate(ws, message)) return
    if (info.kind === "client") this.clientFrame(ws, info, message, now)
    else this.bridgeFrame(ws, info, message, now)
    this.host.maybeFlushCounters(now)
  }

  private clientFrame(ws: WebSocket, info: Extract<LinkInfo, { kind: "client" }>, data: ArrayBuffer, now: number): void {
    const d = decodeClientToRelay(data)
    if (d._tag === "Invalid" && d.reason === "unknown-frame" && info.joined && this.auth.frame(ws, data)) return
    if (d._tag === "Invalid") return this.reject(ws, info, linkErrorOfDecode(d), `${d.reason}: ${d.detail}`, now)
    if (info.joined) return this.host.feed({ _tag: "ClientFrameReceived", now, client: info.client, frame: d.value })
    if (d.value.t !== "hello") return this.reject(ws, info, "protocol", "hello first", now)
    if (d.value.role === "controller" && info.maxRole !== "controller") return this.reject(ws, info, "policy", "token allows viewer only", now)
    this.host.joined(ws, info)
    this.host.feed({ _tag: "ClientJoined", now, client: info.client, maxRole: info.maxRole, hello: d.value, resumeToken: newResumeToken() })
  }

  private bridgeFrame(ws: WebSocket, info: Extract<LinkInfo, { kind: "bridge" }>, data: ArrayBuffer, now: number): void {
    const d = decodeBridgeToRelay(data)
    if (d._tag === "Invalid" && d.reason === "unknown-frame" && info.joined && this.auth.frame(ws, data)) return
    if (d._tag === "Invalid") return this.reject(ws, info, linkErrorOfDecode(d), `${d.reason}: ${d.detail}`, now)
    if (info.joined) return this.host.feed({ _tag: "BridgeFrameReceived", now, frame: d.value })
    if (d.value.t !== "hello") return this.reject(ws, info, "protocol", "hello first", now)
    const previous = this.host.bridge
    // A live migration's destination waits for the source to hand over (docs/migration.md); it retries.
    if (previous !== undefined && d.value.continues === true) return this.reject(ws, info, "going-away", "the migration's source has not handed this VM over yet", now)
    if (previous !== undefined) audit("takeover", { link: "bridge", session: this.ctx.id.toString() })
    if (previous !== undefined) this.host.close(previous, "replaced", "another bridge took this VM", encodeRelayToBridge({ t: "error", code: "replaced", detail: "another bridge took this VM" }))
    this.host.joined(ws, info)
    this.host.feed({ _tag: "BridgeAttached", now, hello: d.value })
  }

  /** Bytes that do not decode: the actor decides for joined links; links still in their handshake are closed here. */
  private reject(ws: WebSocket, info: LinkInfo, code: LinkErrorCode, detail: string, now: number): void {
    this.host.count(`frames.rejected.${info.kind}`, 1)
    if (info.joined) return this.host.feed({ _tag: "FrameRejected", now, from: info.kind === "client" ? { client: info.client } : "bridge", detail })
    const frame = info.kind === "client" ? encodeRelayToClient({ t: "error", code, detail }) : encodeRelayToBridge({ t: "error", code, detail })
    this.host.close(ws, code, detail, frame)
  }

  override async webSocketClose(ws: WebSocket, code: number, _reason: string, _wasClean: boolean): Promise<void> {
    this.host.scopes.end(ws, code === 1006 ? "error" : "closed")
    this.host.flushCounters()
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, "bye") // complete the closing handshake
    } catch {
      // Already closed.
    }
  }

  override async webSocketError(ws: WebSocket, _error: unknown): Promise<void> {
    this.host.scopes.end(ws, "error")
    this.host.flushCounters()
  }

  override async alarm(): Promise<void> {
    if (this.auth.alarm(Date.now())) this.host.feed({ _tag: "TimerFired", now: Date.now() })
  }

  private status(claims: ForwardedClaims) {
    this.host.flushCounters()
    return statusOf(claims, persisted(this.host.state), this.ctx.getWebSockets(), this.host, (ws) => this.ctx.getWebSocketAutoResponseTimestamp(ws))
  }

  private putPolicy(patch: unknown): Response {
    const policy = mergePolicy(persisted(this.host.state).policy, patch)
    if (policy === undefined) return new Response("bad policy", { status: 400 })
    this.host.feed({ _tag: "PolicyChanged", now: Date.now(), policy })
    return Response.json(policy)
  }
}
