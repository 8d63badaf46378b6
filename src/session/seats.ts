// Resumable client seats (DESIGN.md invariant 5, "clients can resume too"): a link lost to the network leaves a seat
// that `hello.resume` takes back once within `clientGraceMs`; a departed controller's CLIENT_DISCONNECTED is held for
// that grace, so a blip does not make the agent release the console's clipboard. Also kept here: the answers a seat
// gave (so a resumed console's resends are not written twice) and the file transfers it has open on the agent.
import { FileXferResult, MessageType, Port } from "../protocol/constants.ts"
import { encodeFileXferStatus } from "../protocol/codec-file-xfer.ts"
import type { Answer, ClientSide, Seat, SessionState } from "./state.ts"
import type { ClientId, LeaveCause, PersistedSeat } from "./types.ts"
import { metric } from "./emit.ts"
import { reachable, sendClientDisconnected, writeWhole } from "./guest-out.ts"

/** Causes that look like a blip (the console did not mean to leave): its seat stays resumable. */
const RESUMABLE: ReadonlySet<LeaveCause> = new Set<LeaveCause>(["error", "evicted", "slow-consumer"])

/** The agent keeps at most 128 transfers (spec §11); a console cannot have more open. */
const MAX_XFERS = 128

export const resumableCause = (cause: LeaveCause): boolean => RESUMABLE.has(cause)

/** Records the answer to message `id` in a bounded, oldest-first map; "resend" forgets it (the id may come again). */
export const remember = (s: SessionState, answered: Map<number, Answer>, id: number, a: Answer | "resend"): void => {
  answered.delete(id)
  if (a === "resend") return
  answered.set(id, a)
  while (answered.size > s.limits.seatAnswers) answered.delete(answered.keys().next().value!)
}

export const seatOfClient = (s: SessionState, client: ClientId): Seat | undefined => {
  for (const seat of s.seats.values()) if (seat.client === client) return seat
  return undefined
}

/** The answer to a message of a client whose link may be gone: its seat keeps it for the resumed console. */
export const answerAbsent = (s: SessionState, client: ClientId, id: number, a: Answer | "resend"): void => {
  const seat = seatOfClient(s, client)
  if (seat !== undefined) remember(s, seat.answered, id, a)
}

/** A departing member leaves a seat behind when its token allows and the cause looks like a blip. */
export const keepSeat = (s: SessionState, c: ClientSide, cause: LeaveCause, force = false): Seat | undefined => {
  if (c.token === "" || (!force && !resumableCause(cause))) return undefined
  const seat: Seat = {
    token: c.token,
    client: c.id,
    control: false,
    until: s.now + s.limits.clientGraceMs,
    lastEpoch: c.lastEpoch,
    lastPos: c.lastPos,
    partialSeq: c.partialSeq,
    answered: c.answered,
    cancelled: c.cancelled,
  }
  addSeat(s, seat)
  return seat
}

const addSeat = (s: SessionState, seat: Seat): void => {
  s.seats.delete(seat.token)
  s.seats.set(seat.token, seat)
  // Over the bound the oldest seat is forgotten; one holding control is released first (the agent is told).
  while (s.seats.size > s.limits.resumeSeats) dropSeat(s, s.seats.values().next().value!)
  s.persistDirty = true
}

const dropSeat = (s: SessionState, seat: Seat): void => {
  s.seats.delete(seat.token)
  s.persistDirty = true
  if (seat.control) {
    seat.control = false
    controllerReleased(s)
  }
}

/**
 * A departed controller keeps control for the grace: nothing is said to the agent yet, except that its transfers are
 * cancelled at once (the agent's replies to them could not reach the console and are not replayed, so a transfer
 * continued after a resume could hang), and the resumed console hears CANCELLED for them.
 */
export const holdControl = (s: SessionState, c: ClientSide, seat: Seat): void => {
  seat.control = true
  s.guest.mousePending = null
  for (const id of c.xfers) {
    seat.cancelled.add(id)
    if (!reachable(s)) continue
    const enc = encodeFileXferStatus({ _tag: "FileXferStatus", id, result: FileXferResult.Cancelled }, false)
    if (enc._tag === "Ok") writeWhole(s, Port.Client, MessageType.FileXferStatus, enc.value, null)
  }
  if (c.xfers.size > 0) metric(s, "vdrelay_file_xfers_cancelled_total", { why: "client-lost" }, c.xfers.size)
  c.xfers.clear()
}

/** The agent's client side is reset (spec §5.7 case 3): it releases the clipboard and ends every transfer. */
export const controllerReleased = (s: SessionState): void => {
  s.guest.mousePending = null
  sendClientDisconnected(s)
  for (const c of s.clients.values()) c.xfers.clear()
}

/** A seat holding control loses it (someone takes control): the agent hears CLIENT_DISCONNECTED now. */
export const releaseHeld = (s: SessionState): void => {
  for (const seat of s.seats.values())
    if (seat.control) {
      seat.control = false
      s.persistDirty = true
      controllerReleased(s)
    }
}

/** Seats past their grace are forgotten; a held controller's CLIENT_DISCONNECTED goes out now. */
export const expireSeats = (s: SessionState, now: number): void => {
  for (const seat of [...s.seats.values()])
    if (seat.until <= now) {
      metric(s, "vdrelay_client_seats_expired_total", { control: String(seat.control) })
      dropSeat(s, seat)
    }
}

/** Takes the seat of `token` (single use): a departed seat within its grace, else undefined. */
export const takeSeat = (s: SessionState, token: string): Seat | undefined => {
  const seat = s.seats.get(token)
  if (seat === undefined) return undefined
  s.seats.delete(token)
  s.persistDirty = true
  return seat
}

/** Earliest time a TimerFired is needed for: the bridge grace or a held controller's grace. */
const nextDeadline = (s: SessionState): number | null => {
  let at = s.graceUntil
  for (const seat of s.seats.values()) if (seat.control && (at === null || seat.until < at)) at = seat.until
  return at
}

/** Asks for the next TimerFired when the earliest deadline changed (one timer: a later SetTimer replaces it). */
export const armTimer = (s: SessionState): void => {
  const at = nextDeadline(s)
  if (at === null || at === s.timerAt) return
  s.timerAt = at
  s.out.push({ _tag: "SetTimer", at })
}

// ---------------------------------------------------------------- file transfers on the agent

export const xferStarted = (c: ClientSide, id: number): void => {
  c.xfers.add(id)
  if (c.xfers.size > MAX_XFERS) c.xfers.delete(c.xfers.values().next().value!)
}

/** A transfer ended (a final FILE_XFER_STATUS from either side). */
export const xferEnded = (s: SessionState, id: number): void => {
  for (const c of s.clients.values()) c.xfers.delete(id)
}

// ---------------------------------------------------------------- persistence

/** Seats for PersistedState: the controller's first, then live links, then departed seats, newest first. */
export const persistedSeats = (s: SessionState): PersistedSeat[] => {
  const out: PersistedSeat[] = []
  const live = [...s.clients.values()].filter((c) => c.token !== "")
  live.sort((a, b) => Number(b.role === "controller") - Number(a.role === "controller"))
  for (const c of live) out.push({ token: c.token, client: c.id, control: c.role === "controller", until: null, lastEpoch: c.lastEpoch, lastPos: c.lastPos })
  const gone = [...s.seats.values()].filter((x) => x.until > s.now).reverse()
  gone.sort((a, b) => Number(b.control) - Number(a.control))
  for (const x of gone) out.push({ token: x.token, client: x.client, control: x.control, until: x.until, lastEpoch: x.lastEpoch, lastPos: x.lastPos })
  out.sort((a, b) => Number(b.control) - Number(a.control))
  return out.slice(0, s.limits.resumeSeats)
}

/**
 * After a restart: seats whose link is not among the restored ones become departed seats (a link lost in the restart
 * gets a fresh grace); control is held only if no restored link controls. Answers given are not persisted: a console
 * resumed across a restart may have its unacknowledged messages written again.
 */
export const restoreSeats = (s: SessionState, seats: ReadonlyArray<PersistedSeat>, now: number): void => {
  const liveTokens = new Set([...s.clients.values()].map((c) => c.token))
  for (const p of seats) {
    if (typeof p.token !== "string" || p.token === "" || liveTokens.has(p.token)) continue
    const until = p.until ?? now + s.limits.clientGraceMs
    if (until <= now && !p.control) continue
    const seat: Seat = {
      token: p.token,
      client: p.client,
      control: false,
      until,
      lastEpoch: p.lastEpoch,
      lastPos: p.lastPos,
      partialSeq: null,
      answered: new Map(),
      cancelled: new Set(),
    }
    addSeat(s, seat)
    if (p.control && s.controller === null && ![...s.seats.values()].some((x) => x.control)) seat.control = true
  }
  expireSeats(s, now)
}
