// The guest-bound bytes held while the bridge tunnel is down within its grace (owner of GuestOut `held`, `heldBytes`
// and the stream's `heldCredit`): appended in order, bounded, rebound to a resumed seat. What becomes of them when the
// tunnel comes back or does not is hold.ts.
import { MessageType, Port } from "../protocol/constants.ts"
import type { HeldWrite, SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { giveBack } from "./credit.ts"

/**
 * What may be held at once, in chunked bytes: the controller's client→relay credit (what the bridge's buffer holds
 * when the tunnel is up; an honest sender cannot exceed it, since its credit is withheld) plus one stored message's
 * worth for framing, the relay's own messages and a takeover during the blip.
 */
export const heldCap = (s: SessionState): number => s.limits.clientCredit + s.limits.storeAndForwardBytes

/**
 * Whether `wire` more chunked bytes of a client's message may be held. The relay's own messages are not refused: a
 * CLIENT_DISCONNECTED is not held twice in a row (hold), and its FILE_XFER cancels follow transfers that were held.
 */
export const fitsHeld = (s: SessionState, wire: number): boolean => s.guest.heldBytes + wire <= heldCap(s)

/** Bytes of a CLIENT_DISCONNECTED: a second one right after another changes nothing for the agent. */
const isDisconnect = (w: HeldWrite): boolean => w.port === Port.Server && w.from === null && w.bytes.length === 28 && w.bytes[12] === MessageType.ClientDisconnected

export const hold = (s: SessionState, w: HeldWrite): void => {
  const last = s.guest.held[s.guest.held.length - 1]
  if (last !== undefined && isDisconnect(w) && isDisconnect(last)) return
  s.guest.held.push(w)
  if (w.from !== null) s.guest.heldBytes += w.bytes.length
}

/** Empties the held queue and returns what it held, in order. */
export const takeHeld = (s: SessionState): HeldWrite[] => {
  const held = s.guest.held
  s.guest.held = []
  s.guest.heldBytes = 0
  return held
}

/** A resumed seat's held messages are answered on its new link (their credit was the old link's: it is gone). */
export const rebindHeld = (s: SessionState, from: ClientId, to: ClientId): void => {
  s.guest.held = s.guest.held.map((w) =>
    w.from !== from ? w : { ...w, from: to, settle: w.settle === null ? null : { client: to, id: w.settle.id }, credit: 0 },
  )
}

/** The held port-1 stream ends unfinished: its bytes (the port-1 writes after the last whole one) go, credit back. */
export const dropHeldStream = (s: SessionState, st: { readonly client: ClientId; heldCredit: number }): void => {
  const g = s.guest
  let k = g.held.length
  while (k > 0 && !(g.held[k - 1]!.port === Port.Client && g.held[k - 1]!.end)) k--
  const kept = g.held.slice(0, k)
  for (const w of g.held.slice(k)) {
    if (w.port === Port.Client) g.heldBytes -= w.from === null ? 0 : w.bytes.length
    else kept.push(w)
  }
  g.held = kept
  giveBack(s, st.client, st.heldCredit)
  st.heldCredit = 0
}

/** The tunnel is back: the credit withheld for the open stream's held bytes is given back (they were written). */
export const releaseStreamCredit = (s: SessionState): void => {
  const st = s.guest.stream
  if (st === null || st.heldCredit === 0) return
  giveBack(s, st.client, st.heldCredit)
  st.heldCredit = 0
}
