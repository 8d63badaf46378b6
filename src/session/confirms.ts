// Agent messages a console confirmed it received (owner of ClientSide.unconfirmed; `hello.confirms`, `got`). A relay
// crash closes the consoles' sockets with frames still in flight: what the relay handed to a socket is not what the
// console got. For a console that confirms, a message sent whole stays unconfirmed until its `got`, and while it does
// (1) the acknowledgement of agent bytes to the bridge stops where the message began (step.ts), so a restart replays it,
// and (2) its end is not the console's replay position (`lastPos`), so the replay is sent to it again. The resuming
// console's `hello.lastSeq` confirms what it did get. Consoles that do not confirm keep "sent whole" as "has it".
import type { ClientSide, Seat, SessionState, Unconfirmed } from "./state.ts"
import type { PersistedUnconfirmed } from "./types.ts"
import { log, metric } from "./emit.ts"

/**
 * Bound of the list (and of what is persisted of it). A console that stops confirming holds the acknowledgement back
 * anyway (a viewer is closed a window behind, a controller back-pressures the agent); past this many messages the oldest
 * counts as had, as for a console that does not confirm.
 */
export const MAX_UNCONFIRMED = 256

/**
 * A message the acknowledgement may stop before while it is sent and until it is confirmed: one that fits half the agent
 * window (the bridge can send all of it and more beyond the held acknowledgement). A longer one is acknowledged piecewise
 * as it streams (the agent window could not hold it), so a crash cannot replay it: a console that did not get all of
 * it gets none of it (the SDK fails a waiting clipboard request at the link drop).
 */
export const replayable = (s: SessionState, size: number): boolean => size <= s.limits.agentWindow / 2

/**
 * The end of message `seq` (begun in the frame at `from`, undefined when it is not replayable) was handed to the
 * console's socket at `end`.
 */
export const sentWhole = (s: SessionState, c: ClientSide, seq: number, from: number | undefined, end: number): void => {
  c.lastEpoch = s.epoch
  c.lastPos = end
  if (!c.confirms) {
    c.hadEpoch = s.epoch
    c.hadPos = end
    return
  }
  // Kept even when not replayable: its confirmation (or the resuming console's lastSeq) still says the console has it.
  c.unconfirmed.push({ seq, epoch: s.epoch, from: from === undefined ? -1 : Math.min(from, end), end })
  // Persisted with the frame (the output gate holds the frame until the write is done): a resumed console's lastSeq
  // can then always be matched to the messages it names.
  s.persistDirty = true
  if (c.unconfirmed.length > MAX_UNCONFIRMED) {
    metric(s, "vdrelay_client_unconfirmed_overflow_total", {})
    had(c, c.unconfirmed.shift()!)
  }
}

const had = (c: ClientSide, u: Unconfirmed): void => {
  if (u.epoch !== c.hadEpoch || u.end > c.hadPos) {
    c.hadEpoch = u.epoch
    c.hadPos = u.end
  }
  c.dirty = true
}

/** `got`: every message up to `seq` arrived whole. */
export const confirmed = (s: SessionState, c: ClientSide, seq: number): void => {
  let n = 0
  while (n < c.unconfirmed.length && c.unconfirmed[n]!.seq <= seq) had(c, c.unconfirmed[n++]!)
  if (n === 0) return
  c.unconfirmed.splice(0, n)
  s.persistDirty = true
}

/**
 * Where the acknowledgement to the bridge must stop for `c` (Infinity: nothing unconfirmed of this connection): the start
 * of its oldest unconfirmed message, or of the replayable one it is being sent.
 */
export const confirmLimit = (s: SessionState, c: ClientSide): number => {
  if (!c.confirms) return Infinity
  let limit = c.sendingFrom ?? Infinity
  for (const u of c.unconfirmed)
    if (u.from >= 0 && u.epoch === s.epoch) {
      limit = Math.min(limit, u.from)
      break
    }
  return limit
}

/** A new agent connection: nothing of the old one can be replayed, so nothing of it waits for confirmation. */
export const forgetUnconfirmed = (c: ClientSide): void => {
  c.unconfirmed = []
  c.sendingFrom = undefined
}

/**
 * The replay position of a resumed seat: what it had confirmed, plus the messages its `lastSeq` says it got. The rest
 * is replayed to it (the acknowledgement never passed their start).
 */
export const resumePosition = (
  seat: { readonly lastEpoch: number; readonly lastPos: number; readonly unconfirmed: ReadonlyArray<Unconfirmed> },
  lastSeq: number | undefined,
): { lastEpoch: number; lastPos: number } => {
  const at = { lastEpoch: seat.lastEpoch, lastPos: seat.lastPos }
  if (lastSeq === undefined) return at
  for (const u of seat.unconfirmed)
    if (u.seq <= lastSeq && (u.epoch !== at.lastEpoch || u.end > at.lastPos)) {
      at.lastEpoch = u.epoch
      at.lastPos = u.end
    }
  return at
}

// ---------------------------------------------------------------- after a crash

/**
 * A seat waits for the agent stream if its link ended with the relay (its console is on its way back and would miss
 * what the agent says meanwhile: rule 5 replays nothing of a gap), or if it may lack a message the crash lost.
 */
export const awaitsReplay = (s: SessionState, seat: Seat): boolean =>
  seat.crashed === true || seat.unconfirmed.some((u) => u.from >= 0 && u.epoch === s.epoch)

const seatsAwaitReplay = (s: SessionState): boolean => {
  for (const seat of s.seats.values()) if (awaitsReplay(s, seat)) return true
  return false
}

/** At a restore: hold the agent stream while a departed seat may lack a message the crash lost (SessionState.replayHold). */
export const holdReplay = (s: SessionState): void => {
  s.replayHold = seatsAwaitReplay(s)
  if (s.replayHold) log(s, "info", "agent replay held for consoles", { seats: [...s.seats.values()].filter((x) => awaitsReplay(s, x)).length })
}

/** Every step: once no seat waits (resumed, expired, or a new agent connection), the bridge sends again from here. */
export const releaseReplay = (s: SessionState): void => {
  if (!s.replayHold || seatsAwaitReplay(s)) return
  s.replayHold = false
  log(s, "info", "agent replay released", { pos: s.stream.pos })
  if (s.bridge === null) return
  s.out.push({ _tag: "SendToBridge", frame: { t: "rewind", epoch: s.epoch, pos: s.stream.pos } })
  s.rewindTo = s.stream.pos
}

// ---------------------------------------------------------------- persistence

export const persistUnconfirmed = (list: ReadonlyArray<Unconfirmed>): { unconfirmed?: PersistedUnconfirmed[] } =>
  list.length === 0 ? {} : { unconfirmed: list.slice(-MAX_UNCONFIRMED).map((u) => [u.seq, u.epoch, u.from, u.end] as const) }

const isInt = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n)

export const restoreUnconfirmed = (p: unknown): Unconfirmed[] =>
  Array.isArray(p)
    ? p
        .slice(-MAX_UNCONFIRMED)
        .filter((u): u is PersistedUnconfirmed => Array.isArray(u) && u.length === 4 && u.every(isInt))
        .map(([seq, epoch, from, end]) => ({ seq, epoch, from, end }))
    : []
