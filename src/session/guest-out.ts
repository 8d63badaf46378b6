// Guest-bound writes on the bridge link (owner of GuestOut but its held queue, held.ts): whole messages and one
// streamed port-1 message chunked ≤ 2048 with positions, `abort` for a stream that will not complete, MOUSE_STATE
// coalesced with one in flight (latest wins), and `wrote` handling (acks to senders, credit back to the controller
// while the guest keeps up).
import type { NoticeCode } from "../link/types.ts"
import { MessageType, Port } from "../protocol/constants.ts"
import { MessageChunker, encodeChunkedMessage } from "../protocol/chunker.ts"
import { encodeMouseState } from "../protocol/codec-display.ts"
import type { GuestOut, MessageKey, Mouse, SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { answer, record } from "./answers.ts"
import { giveBack, returnCredit } from "./credit.ts"
import { dropHeldStream, hold, rebindHeld } from "./held.ts"
import { reachable, writable } from "./reach.ts"

export const newGuestOut = (): GuestOut => ({ wpos: 0, wrote: 0, known: true, stream: null, inflight: [], held: [], heldBytes: 0, mouseEnds: [], mousePending: null })

const FULL_CHUNK = 2056

/** `key`: the bytes begin a client's message, whose first frame names it for the bridge (written once, ever). */
const emitWrites = (s: SessionState, port: number, bytes: Uint8Array, end: boolean, key?: MessageKey): void => {
  const g = s.guest
  const piece = Math.max(FULL_CHUNK, Math.floor(s.limits.bridgeWriteBytes / FULL_CHUNK) * FULL_CHUNK)
  // Pieces are cut at multiples of a full chunk, so every write frame carries whole chunks.
  for (let o = 0; o < bytes.length; o += piece) {
    const data = bytes.subarray(o, Math.min(bytes.length, o + piece))
    const last = o + piece >= bytes.length
    const named = o === 0 && key !== undefined ? { origin: key.origin, id: key.id } : {}
    s.out.push({ _tag: "SendToBridge", frame: { t: "write", epoch: s.epoch, pos: g.wpos, port, data, end: end && last, ...named } })
    g.wpos += data.length
  }
  s.bridge!.dirty = true
}

/** The key of `client`'s message `id`, if the client named its origin. */
const keyOf = (s: SessionState, client: ClientId, id: number): MessageKey | undefined => {
  const origin = s.clients.get(client)?.origin ?? ""
  return origin === "" ? undefined : { origin, id }
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
  key?: MessageKey,
): void => {
  if (s.bridge === null) return hold(s, { port, bytes, end, from, settle, credit, ...(key === undefined ? {} : { key }) })
  emitWrites(s, port, bytes, end, key)
  if (settle !== null) s.guest.inflight.push({ end: s.guest.wpos, client: settle.client, id: settle.id })
  giveBack(s, from, credit)
}

/**
 * Writes one whole message; a client's message is acknowledged to it once `wrote` passes its end. `credit`: the
 * sender's credit for it, given back once it is written (or dropped).
 */
export const writeWhole = (s: SessionState, port: number, type: number, payload: Uint8Array, from: { client: ClientId; id: number } | null, credit = 0): void =>
  writeOut(s, port, encodeChunkedMessage(port, type, payload), true, from?.client ?? null, { client: from?.client ?? null, id: from?.id ?? -1 }, credit, from === null ? undefined : keyOf(s, from.client, from.id))

export const streamStart = (s: SessionState, client: ClientId, id: number, type: number, size: number): void => {
  s.guest.stream = { client, id, chunker: new MessageChunker(Port.Client, type, size), start: s.guest.wpos, heldCredit: 0, key: keyOf(s, client, id) ?? null }
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
  if (out.length > 0 || done) {
    writeOut(s, Port.Client, out, done, st.client, done ? { client: st.client, id: st.id } : null, credit, st.key ?? undefined)
    st.key = null
  }
  if (done) {
    record(s, st.client, st.id, "pending")
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

/** The port-1 stream held while the tunnel was down is given up; nothing of it reached the bridge, so no `abort`. */
export const abandonHeldStream = (s: SessionState): void => {
  const st = s.guest.stream
  if (st === null) return
  s.guest.stream = null
  dropHeldStream(s, st)
}

export const sendClientDisconnected = (s: SessionState): void => {
  if (reachable(s)) writeWhole(s, Port.Server, MessageType.ClientDisconnected, new Uint8Array(0), null)
}

/**
 * MOUSE_STATE messages the bridge may hold unconfirmed: it acknowledges pointer-only progress in batches (one `wrote`
 * per 32 moves or per pause, not per move: guest-writer.ts), so up to this many go out without waiting; beyond it
 * (a chardev that stopped reading) the latest pending one waits and earlier ones are coalesced away.
 */
export const MOUSE_IN_FLIGHT = 64

/** MOUSE_STATE on the server port, only when the agent announced the cap; MOUSE_IN_FLIGHT in flight, the latest pending. */
export const sendMouse = (s: SessionState, m: Mouse): void => {
  const g = s.guest
  // While the tunnel is down the latest pointer waits (hold.ts sends it when the bridge is back).
  if (s.bridge === null || g.mouseEnds.length >= MOUSE_IN_FLIGHT) {
    g.mousePending = m
    return
  }
  const enc = encodeMouseState({ _tag: "MouseState", x: m.x, y: m.y, buttons: m.buttons, displayId: m.display })
  if (enc._tag !== "Ok") return
  g.mousePending = null
  emitWrites(s, Port.Server, encodeChunkedMessage(Port.Server, MessageType.MouseState, enc.value), true)
  g.mouseEnds.push(g.wpos)
}

/** Every MOUSE_STATE ending at or below `pos` is written: room for the pending one. */
const mouseConfirmed = (s: SessionState, pos: number): void => {
  const g = s.guest
  let k = 0
  while (k < g.mouseEnds.length && g.mouseEnds[k]! <= pos) k++
  if (k === 0) return
  g.mouseEnds.splice(0, k)
  if (g.mousePending !== null && writable(s)) sendMouse(s, g.mousePending)
}

/**
 * The bridge wrote every server-port message ending at or below `pos`, possibly before client-port bytes below it
 * (ports interleave at the chardev): the MOUSE_STATEs up to it are written, so the latest pending one may go.
 */
export const serverWrote = (s: SessionState, pos: number): void => mouseConfirmed(s, pos)

/** The bridge wrote (or discarded, for aborted messages) everything below `pos`. */
export const guestWrote = (s: SessionState, pos: number): void => {
  const g = s.guest
  if (pos <= g.wrote) return
  g.wrote = pos
  s.bridge!.dirty = true
  settleInflight(s)
  mouseConfirmed(s, pos)
  for (const c of s.clients.values()) returnCredit(s, c)
}

/** Acknowledges to their senders the messages the bridge has written. */
export const settleInflight = (s: SessionState): void => {
  const g = s.guest
  let k = 0
  while (k < g.inflight.length && g.inflight[k]!.end <= g.wrote) {
    const f = g.inflight[k++]!
    if (f.client !== null) answer(s, f.client, f.id, "ack", "")
  }
  if (k > 0) g.inflight.splice(0, k)
}

/**
 * Messages handed to the bridge and not confirmed written will never be (tunnel or agent gone): their senders are told
 * `code`. Returns those senders.
 */
export const failInflight = (s: SessionState, code: NoticeCode, detail: string): Set<ClientId> => {
  const senders = new Set<ClientId>()
  for (const f of s.guest.inflight) {
    if (f.client === null) continue
    senders.add(f.client)
    answer(s, f.client, f.id, code, detail)
  }
  s.guest.inflight = []
  return senders
}

/** Ids of a client's messages in flight or held (for its attachment). */
export const inflightOf = (s: SessionState, client: ClientId): number[] => [
  ...s.guest.inflight.filter((f) => f.client === client).map((f) => f.id),
  ...s.guest.held.flatMap((h) => (h.settle !== null && h.settle.client === client ? [h.settle.id] : [])),
]

/**
 * A restart without the bridge link left message `id` of `client`, sent in `epoch`, of unknown fate: the bridge's next
 * hello decides (unsureAnswered), or the grace that restore starts for it runs out (`dropped-by-disconnect`).
 */
export const restoreUnsure = (s: SessionState, client: ClientId, id: number, epoch: number): void => {
  s.guest.inflight.push({ end: Number.POSITIVE_INFINITY, client, id, epoch })
  record(s, client, id, "pending")
}

/**
 * The bridge is back in `epoch`: unsure messages sent in another epoch went to an agent connection that has ended
 * (they may have reached it, and are never written to another one: `dropped-by-disconnect`); those of this epoch are
 * left to the caller's `resend` (the bridge writes a keyed message once, however often it is sent).
 */
export const unsureAnswered = (s: SessionState, epoch: number): void => {
  const g = s.guest
  if (!g.inflight.some((f) => f.epoch !== undefined)) return
  const kept = []
  for (const f of g.inflight) {
    if (f.epoch === undefined || f.epoch === epoch) kept.push(f)
    else if (f.client !== null) answer(s, f.client, f.id, "dropped-by-disconnect", "the agent connection this message was sent to ended during a relay restart")
  }
  g.inflight = kept
}

/** A restart kept message `id` of `client` in flight (the bridge link survived): `wrote` will settle it. */
export const restoreInflight = (s: SessionState, client: ClientId, id: number): void => {
  s.guest.inflight.push({ end: s.guest.wpos, client, id })
  record(s, client, id, "pending")
}

/** A resumed seat's messages in flight or held are answered on its new link. */
export const rebindSender = (s: SessionState, from: ClientId, to: ClientId): void => {
  s.guest.inflight = s.guest.inflight.map((f) => (f.client === from ? { ...f, client: to } : f))
  rebindHeld(s, from, to)
}

/** Guest write positions start again at `wrote` (a tunnel back in the same epoch, or a new chardev connection). */
export const restartPositions = (s: SessionState, wrote: number): void => {
  const g = s.guest
  g.wpos = g.wrote = wrote
  g.known = true
  g.mouseEnds = []
}

/** After a restart: the positions the bridge attachment kept, or unknown until the next hello (storage lacks them). */
export const restorePositions = (s: SessionState, at: { readonly wpos: number; readonly wrote: number } | null): void => {
  if (at === null) {
    s.guest.known = false
    return
  }
  s.guest.wpos = at.wpos
  s.guest.wrote = at.wrote
}

/** The pointer update waiting for the agent is dropped (its client side was reset, or is held for a resume). */
export const dropPendingMouse = (s: SessionState): void => {
  s.guest.mousePending = null
}

/** No MOUSE_STATE is in flight or waiting any more (the tunnel or the agent went). */
export const forgetMouse = (s: SessionState): void => {
  s.guest.mouseEnds = []
  s.guest.mousePending = null
}
