// Client membership and roles: join (welcome), leave, close, and controller takeover. Exactly one controller; a new
// controller takes over and the old one becomes a viewer (told with a `role` frame), since closing it would also
// cut a console that may still want to watch. The agent hears CLIENT_DISCONNECTED whenever a controller goes away
// or is replaced, so it resets its client-port parser and releases what that client owned (spec §5.7 case 3).
import { LINK_VERSION, type LinkErrorCode, type Role } from "../link/types.ts"
import type { ClientSide, SessionState } from "./state.ts"
import type { ClientId, LeaveCause, SessionEvent } from "./types.ts"
import { enqueue } from "./client-queue.ts"
import { log, metric, notice } from "./emit.ts"
import { recheckRecipients, editedCaps } from "./agent-route.ts"
import { sendClientDisconnected, streamAbort } from "./guest-out.ts"
import { dropInbound } from "./client-in.ts"

const newClient = (s: SessionState, id: ClientId, maxRole: Role, caps: ReadonlyArray<number>, now: number): ClientSide => ({
  id,
  role: "viewer",
  maxRole,
  caps: [...caps],
  joinedAt: now,
  items: [],
  head: 0,
  queued: 0,
  credit: s.limits.initialClientCredit,
  lastEpoch: -1,
  lastPos: 0,
  partialSeq: null,
  inMsg: null,
  creditOwed: 0,
  creditFree: 0,
  mouseNoticed: false,
  dirty: true,
})

export const clientJoined = (s: SessionState, e: Extract<SessionEvent, { _tag: "ClientJoined" }>): void => {
  const h = e.hello
  const refuse = (code: LinkErrorCode, detail: string): void => {
    s.out.push({ _tag: "SendToClient", client: e.client, frame: { t: "error", code, detail } })
    s.out.push({ _tag: "CloseClient", client: e.client, code, detail })
  }
  // Client ids are unique per WebSocket (the adapter makes them); a repeated id replaces the earlier member,
  // whose socket the adapter has already let go.
  if (s.clients.has(e.client)) clientLeft(s, e.client, "replaced")
  if (h.v !== LINK_VERSION) return refuse("protocol", `link version ${h.v}, this relay speaks ${LINK_VERSION}`)
  if (h.role === "controller" && e.maxRole !== "controller") return refuse("policy", "the token does not allow control")
  const c = newClient(s, e.client, e.maxRole, Array.isArray(h.caps) ? h.caps.filter((w) => Number.isInteger(w)) : [], e.now)
  s.clients.set(c.id, c)
  metric(s, "vdrelay_client_joins_total", { role: h.role })
  if (h.role === "controller") becomeController(s, c, false)
  enqueue(s, c, {
    frame: {
      t: "welcome",
      v: LINK_VERSION,
      session: s.session,
      role: c.role,
      agent: { connected: s.told, caps: s.told ? editedCaps(s) : null },
      policy: s.policy,
      credit: s.limits.clientCredit,
      resume: `${s.session}/${c.id}`,
    },
    bytes: 0,
  })
}

/** Makes `c` the controller; the previous one becomes a viewer and the agent hears CLIENT_DISCONNECTED for it. */
export const becomeController = (s: SessionState, c: ClientSide, tell: boolean): void => {
  const prev = s.controller === null ? undefined : s.clients.get(s.controller)
  if (prev === c) return
  if (prev !== undefined) {
    prev.role = "viewer"
    prev.dirty = true
    dropInbound(s, prev, "role-changed", "another console took control")
    recheckRecipients(s, prev, "role-changed")
    enqueue(s, prev, { frame: { t: "role", role: "viewer" }, bytes: 0 })
    metric(s, "vdrelay_takeovers_total")
    controllerGone(s)
  }
  s.controller = c.id
  c.role = "controller"
  c.dirty = true
  if (tell) enqueue(s, c, { frame: { t: "role", role: "controller" }, bytes: 0 })
}

/** The agent's client side is reset: no half message of the old controller stays in it, its clipboard is released. */
const controllerGone = (s: SessionState): void => {
  s.guest.mousePending = null
  sendClientDisconnected(s)
}

export const takeControl = (s: SessionState, c: ClientSide): void => {
  if (c.maxRole !== "controller") return notice(s, c, "dropped-by-role", "the token does not allow control")
  becomeController(s, c, true)
}

/** Case 3/4: a client is gone. Its half-sent message never reaches the agent; the rest of what it was receiving is dropped. */
export const clientLeft = (s: SessionState, id: ClientId, cause: LeaveCause): void => {
  const c = s.clients.get(id)
  if (c === undefined) return
  s.clients.delete(id)
  metric(s, "vdrelay_client_leaves_total", { cause })
  if (c.inMsg !== null && c.inMsg.mode === "stream" && s.guest.stream?.client === id) streamAbort(s)
  for (const m of s.stream.msgs.values()) {
    m.to.delete(id)
    m.started.delete(id)
  }
  if (s.controller === id) {
    s.controller = null
    controllerGone(s)
  }
  log(s, "info", "client left", { client: id, cause })
}

/** Closes a client's link (an `error` frame first, sent ahead of its queue) and removes it at once. */
export const closeClient = (s: SessionState, c: ClientSide, code: LinkErrorCode, detail: string, cause: LeaveCause): void => {
  if (s.clients.get(c.id) !== c) return
  s.out.push({ _tag: "SendToClient", client: c.id, frame: { t: "error", code, detail } })
  s.out.push({ _tag: "CloseClient", client: c.id, code, detail })
  clientLeft(s, c.id, cause)
}
