// Guest-bound writes on the bridge link: whole messages and one streamed port-1 message chunked ≤ 2048 with positions,
// `abort` for a stream that will not complete, MOUSE_STATE coalesced with one in flight (latest wins), and `wrote`
// handling (acks to senders, credit back to the controller while the guest keeps up).
import { Cap, MessageType, Port } from "../protocol/constants.ts"
import { hasCap } from "../protocol/caps.ts"
import { MessageChunker, encodeChunkedMessage } from "../protocol/chunker.ts"
import { encodeMouseState } from "../protocol/codec-display.ts"
import type { ClientSide, Mouse, SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { enqueue, present } from "./client-queue.ts"
import { answerAbsent, remember } from "./seats.ts"
import { dropHeldStream, hold } from "./hold.ts"

/** Whether guest-bound bytes can be handed to the bridge now. */
export const writable = (s: SessionState): boolean => s.bridge !== null && s.chardev && s.port !== "closed"

/**
 * Whether guest-bound messages are accepted: written now, or held while the tunnel is down within its grace (the
 * agent is still "connected" for clients, and the bridge is expected back: hold.ts).
 */
export const reachable = (s: SessionState): boolean => (s.bridge !== null || s.graceUntil !== null) && s.chardev && s.port !== "closed"

const FULL_CHUNK = 2056

const emitWrites = (s: SessionState, port: number, bytes: Uint8Array, end: boolean): void => {
  const g = s.guest
  const piece = Math.max(FULL_CHUNK, Math.floor(s.limits.bridgeWriteBytes / FULL_CHUNK) * FULL_CHUNK)
  // Pieces are cut at multiples of a full chunk, so every write frame carries whole chunks.
  for (let o = 0; o < bytes.length; o += piece) {
    const data = bytes.subarray(o, Math.min(bytes.length, o + piece))
    const last = o + piece >= bytes.length
    s.out.push({ _tag: "SendToBridge", frame: { t: "write", epoch: s.epoch, pos: g.wpos, port, data, end: end && last } })
    g.wpos += data.length
  }
  s.bridge!.dirty = true
}

/** Bytes written now when the bridge is there (a whole message's end settles in `inflight`), else held (hold.ts). */
export const writeOut = (
  s: SessionState,
  port: number,
  bytes: Uint8Array,
  end: boolean,
  from: ClientId | null,
  settle: { client: ClientId | null; id: number } | null,
  credit: number,
): void => {
  if (s.bridge === null) return hold(s, { port, bytes, end, from, settle, credit })
  emitWrites(s, port, bytes, end)
  if (settle !== null) s.guest.inflight.push({ end: s.guest.wpos, client: settle.client, id: settle.id })
  const c = from === null || credit === 0 ? undefined : s.clients.get(from)
  if (c !== undefined) {
    c.creditFree += credit
    returnCredit(s, c)
  }
}

/**
 * Writes one whole message; a client's message is acknowledged to it once `wrote` passes its end. `credit`: the
 * sender's credit for it, given back once it is written (or dropped).
 */
export const writeWhole = (s: SessionState, port: number, type: number, payload: Uint8Array, from: { client: ClientId; id: number } | null, credit = 0): void =>
  writeOut(s, port, encodeChunkedMessage(port, type, payload), true, from?.client ?? null, { client: from?.client ?? null, id: from?.id ?? -1 }, credit)

export const streamStart = (s: SessionState, client: ClientId, id: number, type: number, size: number): void => {
  s.guest.stream = { client, id, chunker: new MessageChunker(Port.Client, type, size), start: s.guest.wpos, heldCredit: 0 }
  if (s.bridge !== null) s.bridge.dirty = true
}

/**
 * Streams client bytes of the open port-1 message. Returns whether their credit may be given back now; while the
 * tunnel is down it is withheld (so the sender waits) until they are written or dropped.
 */
export const streamPush = (s: SessionState, bytes: Uint8Array): boolean => {
  const st = s.guest.stream
  if (st === null) return true
  const out = st.chunker.push(bytes)
  const done = st.chunker.done
  const now = s.bridge !== null
  if (!now) st.heldCredit += bytes.length
  const credit = done && !now ? st.heldCredit : 0
  if (out.length > 0 || done) writeOut(s, Port.Client, out, done, st.client, done ? { client: st.client, id: st.id } : null, credit)
  if (done) {
    answered(s, st.client, st.id, "pending")
    s.guest.stream = null
  }
  return now
}

/** Tells the bridge to discard the half-sent port-1 message (it writes only whole messages to the chardev). */
export const streamAbort = (s: SessionState): void => {
  const st = s.guest.stream
  if (st === null) return
  s.guest.stream = null
  if (s.bridge !== null) {
    s.out.push({ _tag: "SendToBridge", frame: { t: "abort", epoch: s.epoch, pos: s.guest.wpos, port: Port.Client } })
    s.bridge.dirty = true
  } else dropHeldStream(s, st)
}

export const sendClientDisconnected = (s: SessionState): void => {
  if (reachable(s)) writeWhole(s, Port.Server, MessageType.ClientDisconnected, new Uint8Array(0), null)
}

/** MOUSE_STATE on the server port, only when the agent announced the cap; one in flight, the latest pending. */
export const sendMouse = (s: SessionState, m: Mouse): void => {
  const g = s.guest
  // While the tunnel is down the latest pointer waits (hold.ts sends it when the bridge is back).
  if (s.bridge === null || (g.mouseEnd !== null && g.wrote < g.mouseEnd)) {
    g.mousePending = m
    return
  }
  const enc = encodeMouseState({ _tag: "MouseState", x: m.x, y: m.y, buttons: m.buttons, displayId: m.display })
  if (enc._tag !== "Ok") return
  g.mousePending = null
  emitWrites(s, Port.Server, encodeChunkedMessage(Port.Server, MessageType.MouseState, enc.value), true)
  g.mouseEnd = g.wpos
}

export const agentTakesMouse = (s: SessionState): boolean => s.rawCaps !== null && hasCap(s.rawCaps, Cap.MouseState)

/**
 * Guest-bound bytes the bridge has not yet written. The bridge's `wrote` passes every byte except those of whole
 * messages still waiting for the chardev (bytes of a message not yet ended do not hold it back: they wait for their
 * `end` or `abort`, bounded by the policy's message size), so a long clipboard stream never delays MOUSE_STATE.
 */
const backlog = (s: SessionState): number => s.guest.wpos - s.guest.wrote

/** Gives a client the credit of bytes forwarded or dropped, unless the guest is behind (then `wrote` will). */
export const returnCredit = (s: SessionState, c: ClientSide): void => {
  if (c.creditFree <= 0 || !present(s, c)) return
  if (s.bridge !== null && backlog(s) > s.limits.guestWindow) return
  const bytes = c.creditFree
  c.creditFree = 0
  c.creditOwed -= bytes
  c.dirty = true
  enqueue(s, c, { frame: { t: "credit", bytes }, bytes: 0 })
}

/**
 * The bridge wrote every server-port message ending at or below `pos`, possibly before client-port bytes below it
 * (ports interleave at the chardev): the MOUSE_STATE in flight is written, so the latest pending one may go.
 */
export const serverWrote = (s: SessionState, pos: number): void => {
  const g = s.guest
  if (g.mouseEnd === null || pos < g.mouseEnd) return
  g.mouseEnd = null
  if (g.mousePending !== null && writable(s)) sendMouse(s, g.mousePending)
}

/** The bridge wrote (or discarded, for aborted messages) everything below `pos`. */
export const guestWrote = (s: SessionState, pos: number): void => {
  const g = s.guest
  if (pos <= g.wrote) return
  g.wrote = pos
  s.bridge!.dirty = true
  settleInflight(s)
  if (g.mouseEnd !== null && pos >= g.mouseEnd) {
    g.mouseEnd = null
    if (g.mousePending !== null && writable(s)) sendMouse(s, g.mousePending)
  }
  for (const c of s.clients.values()) returnCredit(s, c)
}

/** Acknowledges to their senders the messages the bridge has written. */
export const settleInflight = (s: SessionState): void => {
  const g = s.guest
  let k = 0
  while (k < g.inflight.length && g.inflight[k]!.end <= g.wrote) {
    const f = g.inflight[k++]!
    if (f.client === null) continue
    const c = s.clients.get(f.client)
    if (c !== undefined) {
      enqueue(s, c, { frame: { t: "ack", id: f.id }, bytes: 0 })
      remember(s, c.answered, f.id, "ack")
      c.dirty = true
    } else answerAbsent(s, f.client, f.id, "ack")
  }
  if (k > 0) g.inflight.splice(0, k)
}

/** Ids of a client's messages in flight or held (for its attachment). */
export const inflightOf = (s: SessionState, client: ClientId): number[] => [
  ...s.guest.inflight.filter((f) => f.client === client).map((f) => f.id),
  ...s.guest.held.flatMap((h) => (h.settle !== null && h.settle.client === client ? [h.settle.id] : [])),
]

/** Records the answer to a client's message, whether its link is there or its seat waits for a resume. */
export const answered = (s: SessionState, client: ClientId, id: number, a: "pending" | "ack"): void => {
  const c = s.clients.get(client)
  if (c !== undefined) remember(s, c.answered, id, a)
  else answerAbsent(s, client, id, a)
}
