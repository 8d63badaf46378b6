// Hosts the session actor inside the VmSession Durable Object: a run-to-completion event queue in front of `step`, the
// links (sockets, Effect scopes, in-memory index rebuilt from attachments) and the execution of every command.
import { closeCodeOf, closeReason } from "../src/link/close-codes.ts"
import { encodeRelayToBridge } from "../src/link/bridge-codec.ts"
import { encodeRelayToClient } from "../src/link/client-codec.ts"
import type { LinkErrorCode, RelayToBridge, RelayToClient } from "../src/link/types.ts"
import { persisted, restore, step, type ClientId, type LeaveCause, type SessionCommand, type SessionEvent, type SessionState } from "../src/session/index.ts"
import { linkInfoOf, type EdgeAttachment, type LinkInfo } from "./attachments.ts"
import { LinkScopes } from "./link-scopes.ts"
import { audit } from "./audit.ts"
import type { Counters, SessionStore } from "./session-store.ts"

/** The cause a link's end is reported with when the relay itself closes it with `code`. */
export const leaveCauseOf = (code: LinkErrorCode): LeaveCause => {
  switch (code) {
    case "protocol":
    case "too-big":
      return "protocol"
    case "replaced":
      return "replaced"
    case "slow-consumer":
      return "slow-consumer"
    case "internal":
      return "error"
    case "policy":
    case "going-away":
    case "auth":
      return "closed"
  }
}

const COUNTER_FLUSH_MS = 1000

export class SessionHost {
  readonly scopes = new LinkScopes()
  readonly links = new Map<WebSocket, LinkInfo>()
  readonly clients = new Map<ClientId, WebSocket>()
  bridge: WebSocket | undefined
  private queue: SessionEvent[] = []
  private draining = false
  private flushedAt = 0

  constructor(
    public state: SessionState,
    private readonly store: SessionStore,
    private readonly setAlarm: (at: number) => void,
    readonly counters: Counters,
  ) {}

  /** Registers an accepted or rehydrated socket: its scope's finalizer reports the disconnect to the actor. */
  adopt(ws: WebSocket, attachment: EdgeAttachment): LinkInfo {
    const info = linkInfoOf(attachment)
    this.links.set(ws, info)
    if (info.joined && info.kind === "client") this.clients.set(info.client, ws)
    if (info.joined && info.kind === "bridge") this.bridge = ws
    this.scopes.open(ws, (cause) => this.ended(ws, cause))
    return info
  }

  /** A link's scope closed (first close wins): forget the socket and, if the actor knew the link, tell it. */
  private ended(ws: WebSocket, cause: LeaveCause): void {
    const info = this.links.get(ws)
    this.links.delete(ws)
    this.count(`links.closed.${cause}`, 1)
    if (info === undefined || !info.joined) return
    const now = Date.now()
    if (info.kind === "client" && this.clients.get(info.client) === ws) {
      this.clients.delete(info.client)
      this.feed({ _tag: "ClientLeft", now, client: info.client, cause })
    } else if (info.kind === "bridge" && this.bridge === ws) {
      this.bridge = undefined
      this.feed({ _tag: "BridgeDetached", now, cause })
    }
  }

  /** Marks a pending link joined (before the actor sees its hello, so the actor's SetAttachment replaces the marker). */
  joined(ws: WebSocket, info: LinkInfo): void {
    info.joined = true
    if (info.kind === "client") {
      this.clients.set(info.client, ws)
      ws.serializeAttachment({ kind: "joined-client", client: info.client, maxRole: info.maxRole } satisfies EdgeAttachment)
    } else {
      this.bridge = ws
      ws.serializeAttachment({ kind: "joined-bridge" } satisfies EdgeAttachment)
    }
  }

  /** Closes a link from the relay's side: `error` frame, close code, then the scope ends with the matching cause. */
  close(ws: WebSocket, code: LinkErrorCode, detail: string, frame: Uint8Array | undefined): void {
    if (frame !== undefined) this.send(ws, frame)
    try {
      ws.close(closeCodeOf(code), closeReason(detail))
    } catch {
      // Already closing: the scope still has to end.
    }
    this.scopes.end(ws, leaveCauseOf(code))
  }

  /** Closes links still in their handshake that opened before `before` (they never said hello). */
  closeSilentLinks(before: number): void {
    for (const [ws, info] of [...this.links]) {
      if (info.joined || info.since >= before) continue
      const detail = "no hello in time"
      const frame = info.kind === "client" ? encodeRelayToClient({ t: "error", code: "policy", detail }) : encodeRelayToBridge({ t: "error", code: "policy", detail })
      this.close(ws, "policy", detail, frame)
    }
  }

  /** Feeds one event; events fed while commands run are queued and stepped after them, in order. */
  feed(event: SessionEvent): void {
    this.queue.push(event)
    if (this.draining) return
    this.draining = true
    try {
      for (let e = this.queue.shift(); e !== undefined; e = this.queue.shift()) {
        const r = step(this.state, e)
        this.state = r.state
        for (const c of r.commands) this.run(c)
      }
    } catch (error) {
      this.crashed(error)
    } finally {
      this.draining = false
    }
  }

  /** Runs the commands of `restore` (or any batch not produced by `feed`). */
  runAll(commands: ReadonlyArray<SessionCommand>): void {
    for (const c of commands) this.run(c)
  }

  private run(c: SessionCommand): void {
    switch (c._tag) {
      case "SendToClient":
        return this.toClient(c.client, c.frame)
      case "SendToBridge":
        return this.toBridge(c.frame)
      // The actor sends its own `error` frame before a close; the adapter only closes.
      case "CloseClient": {
        const ws = this.clients.get(c.client)
        if (c.code === "replaced") audit("takeover", { link: "console", client: c.client, detail: c.detail })
        return ws && this.close(ws, c.code, c.detail, undefined)
      }
      case "CloseBridge":
        return this.bridge && this.close(this.bridge, c.code, c.detail, undefined)
      case "Persist":
        this.store.saveState(c.state)
        return this.flushCounters()
      case "SetAttachment": {
        const ws = c.link === "bridge" ? this.bridge : this.clients.get(c.link.client)
        return ws?.serializeAttachment(c.data)
      }
      case "SetTimer":
        return this.setAlarm(c.at)
      case "Log":
        return log(c.level, c.event, c.fields)
      case "Metric":
        return this.count(metricKey(c.name, c.labels), c.by)
    }
  }

  private toClient(client: ClientId, frame: RelayToClient): void {
    const ws = this.clients.get(client)
    if (ws !== undefined) this.send(ws, encodeRelayToClient(frame), "client")
  }

  private toBridge(frame: RelayToBridge): void {
    if (this.bridge !== undefined) this.send(this.bridge, encodeRelayToBridge(frame), "bridge")
  }

  send(ws: WebSocket, bytes: Uint8Array, kind?: "client" | "bridge"): void {
    try {
      ws.send(bytes)
      if (kind !== undefined) this.countFrame("out", kind, bytes.byteLength)
    } catch {
      // The socket is gone under us: its scope ends now (once), and the actor hears about it through that one path.
      this.scopes.end(ws, "error")
    }
  }

  countFrame(dir: "in" | "out", kind: "client" | "bridge", bytes: number): void {
    this.count(`frames.${dir}.${kind}`, 1)
    this.count(`bytes.${dir}.${kind}`, bytes)
  }

  count(key: string, by: number): void {
    this.counters[key] = (this.counters[key] ?? 0) + by
  }

  /** Writes the edge counters when the last write is older than a second (and always on Persist and link ends). */
  maybeFlushCounters(now: number): void {
    if (now - this.flushedAt >= COUNTER_FLUSH_MS) this.flushCounters(now)
  }

  flushCounters(now = Date.now()): void {
    this.flushedAt = now
    this.store.saveCounters(this.counters)
  }

  /** `step` threw (our bug): say so, drop every link with 1011, and restart the actor from what storage holds. */
  private crashed(error: unknown): void {
    log("error", "session-crashed", { error: error instanceof Error ? error.message : String(error) })
    this.queue = []
    const links = [...this.links.keys()]
    this.links.clear()
    this.clients.clear()
    this.bridge = undefined
    for (const ws of links) {
      try {
        ws.close(closeCodeOf("internal"), "internal error")
      } catch {
        // Already closed.
      }
      this.scopes.end(ws, "error")
    }
    const stored = this.store.loadState() ?? persisted(this.state)
    this.state = restore(stored, { clients: [] }, Date.now()).state
  }
}

const metricKey = (name: string, labels: Readonly<Record<string, string>> | undefined): string =>
  labels === undefined ? name : `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",")}}`

/** Structured log line; callers never pass tokens (the edge never logs credentials). */
export const log = (level: "info" | "warn" | "error", event: string, fields: Readonly<Record<string, string | number | boolean>>): void => {
  const line = JSON.stringify({ level, event, ...fields })
  if (level === "error") console.error(line)
  else if (level === "warn") console.warn(line)
  else console.log(line)
}
