// One client's outbound queue: frames leave in order, message data only while the client's credit allows.
// A client over its cap is marked and closed at the end of the step (step.ts), never in the middle of a broadcast.
import type { NoticeCode } from "../link/types.ts"
import type { ClientSide, OutItem, SessionState } from "./state.ts"
import { forgetUnconfirmed, replayable, sentWhole } from "./confirms.ts"

/** What a queued control frame counts against the queue cap (so notices cannot pile up for free). */
export const CONTROL_COST = 64

const cost = (it: OutItem): number => (it.bytes > 0 ? it.bytes : CONTROL_COST)

/** Whether `c` is still a member of the session (commands to a departed client are never emitted). */
export const present = (s: SessionState, c: ClientSide): boolean => s.clients.get(c.id) === c

/**
 * Answers about the client's own traffic (ack, notice, credit, pong) and role changes do not wait behind agent
 * message data: they are ordered with nothing in that stream, and a restart would lose them in the queue.
 */
const BYPASS: ReadonlySet<string> = new Set(["ack", "notice", "credit", "pong", "role"])

export const enqueue = (s: SessionState, c: ClientSide, item: OutItem): void => {
  if (!present(s, c)) return
  const f = item.frame
  // A resumed console said it has every message up to its `lastSeq` whole: nothing at or below it is sent again.
  if ((f.t === "msg" || f.t === "more" || f.t === "abort") && f.seq <= c.floorSeq) return
  if (BYPASS.has(item.frame.t)) {
    s.out.push({ _tag: "SendToClient", client: c.id, frame: item.frame })
    return
  }
  c.items.push(item)
  c.queued += cost(item)
  flush(s, c)
}

export const flush = (s: SessionState, c: ClientSide): void => {
  while (c.head < c.items.length) {
    const it = c.items[c.head]!
    if (it.bytes > 0 && c.credit <= 0) break
    c.credit -= it.bytes
    c.queued -= cost(it)
    c.head++
    sent(s, c, it)
    s.out.push({ _tag: "SendToClient", client: c.id, frame: it.frame })
  }
  if (c.head === c.items.length) {
    c.items = []
    c.head = 0
  } else if (c.head > 256 && c.head * 2 > c.items.length) {
    c.items = c.items.slice(c.head)
    c.head = 0
  }
}

const sent = (s: SessionState, c: ClientSide, it: OutItem): void => {
  const f = it.frame
  if (f.t === "msg" || f.t === "more") {
    // Where the agent message began: the first fragment of one that comes from the agent stream carries its frame. Only
    // a message that fits half the agent window is held replayable from its start while it is sent (confirms.ts).
    if (f.t === "msg" && it.framePos !== undefined) c.sendingFrom = replayable(s, f.size) ? it.framePos : undefined
    if (f.end) {
      // A whole message of the relay's own (a FILE_XFER_STATUS refusal, an ANNOUNCE) may go out while an agent message
      // is half sent: only the end of that one clears it.
      if (c.partialSeq === f.seq) c.partialSeq = null
      if (it.msgEnd !== undefined) sentWhole(s, c, f.seq, c.sendingFrom, it.msgEnd)
      if (it.msgEnd !== undefined || c.partialSeq === null) c.sendingFrom = undefined
    } else c.partialSeq = f.seq
    c.dirty = true
  } else if (f.t === "abort" && c.partialSeq === f.seq) {
    // Given up half sent: nothing of it is owed to this console any more, so it holds the acknowledgement back no longer.
    c.partialSeq = null
    c.sendingFrom = undefined
    c.dirty = true
  }
}

/** Position (agent stream) before which everything queued for `c` has been sent; Infinity when nothing waits. */
export const frontier = (c: ClientSide): number => {
  for (let i = c.head; i < c.items.length; i++) {
    const p = c.items[i]!.framePos
    if (p !== undefined) return p
  }
  return Infinity
}

/**
 * Withdraws message `seq` from `c`: unsent frames of it are removed; if some were already sent, an `abort` follows
 * them so the client drops the part it has. A client that never saw any of it hears nothing.
 */
export const withdraw = (s: SessionState, c: ClientSide, seq: number, reason: NoticeCode): void => {
  if (!present(s, c)) return
  let removed = false
  const kept: OutItem[] = []
  for (let i = c.head; i < c.items.length; i++) {
    const it = c.items[i]!
    if (it.seq === seq) {
      c.queued -= cost(it)
      removed = true
    } else kept.push(it)
  }
  if (removed) {
    c.items = kept
    c.head = 0
  }
  if (c.partialSeq === seq) enqueue(s, c, { frame: { t: "abort", seq, reason }, bytes: 0 })
}

/** Marks the end of message `seq` for `c`: flips `end` on its last unsent frame, or queues an empty final `more`. */
export const endMessage = (s: SessionState, c: ClientSide, seq: number, msgEnd: number | undefined, framePos: number | undefined): void => {
  if (!present(s, c)) return
  const last = c.items.length > c.head ? c.items[c.items.length - 1]! : undefined
  if (last !== undefined && last.seq === seq && (last.frame.t === "msg" || last.frame.t === "more")) {
    last.frame = { ...last.frame, end: true }
    if (msgEnd !== undefined) last.msgEnd = msgEnd
    return
  }
  const item: OutItem =
    framePos === undefined
      ? { frame: { t: "more", seq, data: new Uint8Array(0), end: true }, bytes: 0, seq }
      : { frame: { t: "more", seq, data: new Uint8Array(0), end: true }, bytes: 0, seq, framePos }
  if (msgEnd !== undefined) item.msgEnd = msgEnd
  enqueue(s, c, item)
}

/** A new agent connection began: no position `c` got of an earlier one is a replay in it. */
export const forgetPositions = (c: ClientSide): void => {
  // Messages of the old connection still queued mark no position of the new one once sent.
  for (let i = c.head; i < c.items.length; i++) c.items[i]!.msgEnd = undefined
  forgetUnconfirmed(c)
  if (c.lastEpoch === -1 && c.hadEpoch === -1) return
  c.lastEpoch = c.hadEpoch = -1
  c.lastPos = c.hadPos = 0
  c.dirty = true
}

/** The cap a client's queue may not exceed: viewers are closed above it; the controller back-pressures the agent. */
export const queueCap = (s: SessionState, c: ClientSide): number =>
  c.role === "viewer" ? s.limits.clientQueueBytes : s.limits.clientQueueBytes + s.limits.agentWindow
