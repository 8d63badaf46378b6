// Client membership and roles: join (welcome), leave, close, and controller takeover. Exactly one controller; a new
// controller takes over and the old one becomes a viewer (told with a `role` frame), since closing it would also
// cut a console that may still want to watch. The agent hears CLIENT_DISCONNECTED whenever a controller goes away
// or is replaced, so it resets its client-port parser and releases what that client owned (spec §5.7 case 3); a
// controller whose link was lost holds control for a grace instead, and may resume its seat (seats.ts).
import { LINK_VERSION, MAX_ORIGIN_LENGTH, type LinkErrorCode, type Role } from "../link/types.ts"
import { FileXferResult, MessageType } from "../protocol/constants.ts"
import { encodeFileXferStatus } from "../protocol/codec-file-xfer.ts"
import type { ClientSide, Seat, SessionState } from "./state.ts"
import type { ClientId, LeaveCause, SessionEvent } from "./types.ts"
import { forgetRecipient, recheckRecipients } from "./agent-msgs.ts"
import { editedCaps } from "./agent-view.ts"
import { notice } from "./answers.ts"
import { enqueue } from "./client-queue.ts"
import { resumePosition } from "./confirms.ts"
import { controllerReleased, holdControl, releaseHeld, releaseSeat } from "./control.ts"
import { log, metric } from "./emit.ts"
import { rebindSender, streamAbort } from "./guest-out.ts"
import { dropInbound } from "./inbound.ts"
import { expireSeats, keepSeat, takeSeat } from "./seats.ts"
import { allocSeq } from "./seq.ts"

const newClient = (s: SessionState, id: ClientId, maxRole: Role, caps: ReadonlyArray<number>, now: number, token: string, origin: string, confirms: boolean): ClientSide => ({
  id,
  origin,
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
  hadEpoch: -1,
  hadPos: 0,
  partialSeq: null,
  confirms,
  sendingFrom: undefined,
  unconfirmed: [],
  inMsg: null,
  creditOwed: 0,
  creditFree: 0,
  mouseNoticed: false,
  dirty: true,
  token,
  floorSeq: -1,
  answered: new Map(),
  xfers: new Set(),
  cancelled: new Set(),
  owed: new Set(),
  amnesicEpoch: null,
})

const validToken = (t: unknown): string => (typeof t === "string" && t.length <= 256 ? t : "")
const validOrigin = (o: unknown): string => (typeof o === "string" && o.length <= MAX_ORIGIN_LENGTH ? o : "")

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
  expireSeats(s, e.now)
  const token = validToken(e.resumeToken)
  const seat = validToken(h.resume) === "" ? undefined : claimSeat(s, h.resume!)
  const c = newClient(s, e.client, e.maxRole, Array.isArray(h.caps) ? h.caps.filter((w) => Number.isInteger(w)) : [], e.now, token === h.resume ? "" : token, validOrigin(h.origin), h.confirms === true)
  s.clients.set(c.id, c)
  s.persistDirty = true
  metric(s, "vdrelay_client_joins_total", { role: h.role, resumed: String(seat !== undefined) })
  if (seat !== undefined) resumeSeat(s, c, seat, h)
  else if (h.role === "controller") becomeController(s, c, false)
  enqueue(s, c, {
    frame: {
      t: "welcome",
      v: LINK_VERSION,
      session: s.session,
      role: c.role,
      agent: { connected: s.told, caps: s.told ? editedCaps(s) : null },
      policy: s.policy,
      credit: s.limits.clientCredit,
      resume: c.token,
      ...(seat !== undefined ? { resumed: true } : {}),
      ...(c.confirms ? { confirms: true } : {}),
    },
    bytes: 0,
  })
  if (seat !== undefined) afterResume(s, c, seat)
}

/**
 * The seat of a resume token: a departed seat within its grace, or a member whose link still looks open (a half-open
 * TCP connection the relay has not noticed yet): that link is closed and its seat moves to the new one.
 */
const claimSeat = (s: SessionState, token: string): Seat | undefined => {
  for (const old of s.clients.values()) {
    if (old.token !== token) continue
    const detail = "this console resumed on another link"
    s.out.push({ _tag: "SendToClient", client: old.id, frame: { t: "error", code: "replaced", detail } })
    s.out.push({ _tag: "CloseClient", client: old.id, code: "replaced", detail })
    leave(s, old, "replaced", true)
    break
  }
  return takeSeat(s, token)
}

/** The resumed link inherits the seat: control if it still holds it and may and asks to; answers; replay position. */
const resumeSeat = (s: SessionState, c: ClientSide, seat: Seat, h: Extract<SessionEvent, { _tag: "ClientJoined" }>["hello"]): void => {
  metric(s, "vdrelay_client_resumes_total", { control: String(seat.control) })
  const lastSeq = typeof h.lastSeq === "number" && Number.isSafeInteger(h.lastSeq) ? h.lastSeq : undefined
  const at = resumePosition(seat, lastSeq)
  c.lastEpoch = c.hadEpoch = at.lastEpoch
  c.lastPos = c.hadPos = at.lastPos
  c.answered = seat.answered
  c.cancelled = seat.cancelled
  c.amnesicEpoch = seat.amnesicEpoch ?? null
  // A client cannot claim seqs never handed out (a lower floor than its claim only risks a duplicate it skips itself).
  if (typeof h.lastSeq === "number" && Number.isSafeInteger(h.lastSeq)) c.floorSeq = Math.min(h.lastSeq, s.nextSeq - 1)
  rebindSender(s, seat.client, c.id)
  if (seat.control && s.controller === null && c.maxRole === "controller" && h.role === "controller") {
    seat.control = false
    s.controller = c.id
    c.role = "controller"
  } else releaseSeat(s, seat)
  log(s, "info", "client resumed", { client: c.id, previous: seat.client, role: c.role })
}

/** After the welcome: the message it was half sent is aborted; transfers cancelled while it was away are ended. */
const afterResume = (s: SessionState, c: ClientSide, seat: Seat): void => {
  if (seat.partialSeq !== null && seat.partialSeq > c.floorSeq) enqueue(s, c, { frame: { t: "abort", seq: seat.partialSeq, reason: "dropped-by-disconnect" }, bytes: 0 })
  if (c.role === "controller") for (const id of c.cancelled) tellCancelled(s, c, id)
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
    controllerReleased(s)
  } else releaseHeld(s)
  s.controller = c.id
  c.role = "controller"
  c.dirty = true
  s.persistDirty = true
  if (tell) enqueue(s, c, { frame: { t: "role", role: "controller" }, bytes: 0 })
}

export const takeControl = (s: SessionState, c: ClientSide): void => {
  if (c.maxRole !== "controller") return notice(s, c, "dropped-by-role", "the token does not allow control")
  becomeController(s, c, true)
}

/** Case 3/4: a client is gone. Its half-sent message never reaches the agent; the rest of what it was receiving is dropped. */
export const clientLeft = (s: SessionState, id: ClientId, cause: LeaveCause): void => {
  const c = s.clients.get(id)
  if (c !== undefined) leave(s, c, cause, false)
}

/** `keep`: the seat stays resumable whatever the cause (it is moving to a new link). */
const leave = (s: SessionState, c: ClientSide, cause: LeaveCause, keep: boolean): void => {
  const id = c.id
  s.clients.delete(id)
  s.persistDirty = true
  metric(s, "vdrelay_client_leaves_total", { cause })
  if (c.inMsg !== null && c.inMsg.mode === "stream" && s.guest.stream?.client === id) streamAbort(s)
  forgetRecipient(s, id)
  const seat = keepSeat(s, c, cause, keep)
  if (s.controller === id) {
    s.controller = null
    if (seat !== undefined) holdControl(s, c, seat)
    else controllerReleased(s)
  }
  log(s, "info", "client left", { client: id, cause, resumable: seat !== undefined })
}

/** Closes a client's link (an `error` frame first, sent ahead of its queue) and removes it at once. */
export const closeClient = (s: SessionState, c: ClientSide, code: LinkErrorCode, detail: string, cause: LeaveCause): void => {
  if (s.clients.get(c.id) !== c) return
  s.out.push({ _tag: "SendToClient", client: c.id, frame: { t: "error", code, detail } })
  s.out.push({ _tag: "CloseClient", client: c.id, code, detail })
  clientLeft(s, c.id, cause)
}

/** FILE_XFER_STATUS CANCELLED for a transfer the relay ended towards the agent while this console was away. */
const tellCancelled = (s: SessionState, c: ClientSide, id: number): void => {
  const enc = encodeFileXferStatus({ _tag: "FileXferStatus", id, result: FileXferResult.Cancelled }, false)
  if (enc._tag !== "Ok") return
  const seq = allocSeq(s)
  enqueue(s, c, { frame: { t: "msg", seq, type: MessageType.FileXferStatus, size: enc.value.length, data: enc.value, end: true }, bytes: enc.value.length, seq })
}
