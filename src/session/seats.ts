// Resumable client seats (DESIGN.md invariant 5, "clients can resume too"; owner of `seats`): a link lost to the
// network leaves a seat that `hello.resume` takes back once within `clientGraceMs`, with the answers its console was
// given (answers.ts) and the control it held (control.ts); seats are persisted and restored here.
import type { ClientSide, Seat, SessionState } from "./state.ts"
import type { LeaveCause, PersistedSeat } from "./types.ts"
import { releaseSeat } from "./control.ts"
import { metric } from "./emit.ts"
import { persistUnconfirmed, restoreUnconfirmed } from "./confirms.ts"

/** Causes that look like a blip (the console did not mean to leave): its seat stays resumable. */
const RESUMABLE: ReadonlySet<LeaveCause> = new Set<LeaveCause>(["error", "evicted", "slow-consumer"])

export const resumableCause = (cause: LeaveCause): boolean => RESUMABLE.has(cause)

/** A departing member leaves a seat behind when its token allows and the cause looks like a blip. */
export const keepSeat = (s: SessionState, c: ClientSide, cause: LeaveCause, force = false): Seat | undefined => {
  if (c.token === "" || (!force && !resumableCause(cause))) return undefined
  const seat: Seat = {
    token: c.token,
    client: c.id,
    control: false,
    until: s.now + s.limits.clientGraceMs,
    lastEpoch: c.hadEpoch,
    lastPos: c.hadPos,
    unconfirmed: c.unconfirmed,
    partialSeq: c.partialSeq,
    answered: c.answered,
    cancelled: c.cancelled,
    amnesicEpoch: c.amnesicEpoch,
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
  releaseSeat(s, seat)
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

/** A new chardev connection: nothing a departed console got of the old one is a replay of the new one. */
export const seatsNewEpoch = (s: SessionState): void => {
  for (const [token, seat] of s.seats) s.seats.set(token, { ...seat, lastEpoch: -1, lastPos: 0, unconfirmed: [] })
  s.replayHold = false // nothing of the old connection can be replayed
}

// ---------------------------------------------------------------- persistence

/** Seats for PersistedState: the controller's first, then live links, then departed seats, newest first. */
export const persistedSeats = (s: SessionState): PersistedSeat[] => {
  const out: PersistedSeat[] = []
  const live = [...s.clients.values()].filter((c) => c.token !== "")
  live.sort((a, b) => Number(b.role === "controller") - Number(a.role === "controller"))
  for (const c of live) out.push({ token: c.token, client: c.id, control: c.role === "controller", until: null, lastEpoch: c.hadEpoch, lastPos: c.hadPos, ...persistUnconfirmed(c.unconfirmed) })
  const gone = [...s.seats.values()].filter((x) => x.until > s.now).reverse()
  gone.sort((a, b) => Number(b.control) - Number(a.control))
  for (const x of gone) out.push({ token: x.token, client: x.client, control: x.control, until: x.until, lastEpoch: x.lastEpoch, lastPos: x.lastPos, ...persistUnconfirmed(x.unconfirmed) })
  out.sort((a, b) => Number(b.control) - Number(a.control))
  return out.slice(0, s.limits.resumeSeats)
}

/**
 * After a restart: seats whose link is not among the restored ones become departed seats (a link lost in the restart
 * gets a fresh grace); control is held only if no restored link controls. Answers given are not persisted: a console
 * resumed across a restart may have its unacknowledged messages written again.
 */
export const restoreSeats = (s: SessionState, seats: ReadonlyArray<PersistedSeat>, now: number, epoch: number): void => {
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
      unconfirmed: restoreUnconfirmed(p.unconfirmed),
      partialSeq: null,
      answered: new Map(),
      cancelled: new Set(),
      // Its answers are lost with the restart: what it sends `again` is judged by the epoch of the persisted state.
      amnesicEpoch: epoch,
      ...(p.until === null ? { crashed: true } : {}),
    }
    addSeat(s, seat)
    if (p.control && s.controller === null && ![...s.seats.values()].some((x) => x.control)) seat.control = true
  }
  expireSeats(s, now)
}
