// Store-and-forward while the bridge tunnel is down within its grace (spec §5.7 case 5: a blip loses nothing, in
// either direction). The agent is still "connected" for clients, so their messages are accepted and held, in order,
// with the sender's credit withheld (a streamed CLIPBOARD's sender waits once its credit is spent); they are written
// when the tunnel comes back in the same epoch, and reported `dropped-by-disconnect` if it does not.
import type { NoticeCode } from "../link/types.ts"
import { MessageType, Port } from "../protocol/constants.ts"
import type { HeldWrite, SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { metric, notice } from "./emit.ts"
import { answerAbsent } from "./seats.ts"
import { agentTakesMouse, returnCredit, sendMouse, writeOut } from "./guest-out.ts"
import { dropInbound } from "./client-in.ts"

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

/** A resumed seat's held messages are answered on its new link (their credit was the old link's: it is gone). */
export const rebindHeld = (s: SessionState, from: ClientId, to: ClientId): void => {
  s.guest.held = s.guest.held.map((w) =>
    w.from !== from ? w : { ...w, from: to, settle: w.settle === null ? null : { client: to, id: w.settle.id }, credit: 0 },
  )
}

const giveBack = (s: SessionState, client: ClientId | null, bytes: number): void => {
  const c = client === null || bytes === 0 ? undefined : s.clients.get(client)
  if (c === undefined) return
  c.creditFree += bytes
  returnCredit(s, c)
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

/** Held messages that will never be written (grace over, agent gone or replaced): their senders are told. */
export const discardHeld = (s: SessionState, code: NoticeCode, detail: string): void => {
  const g = s.guest
  const held = g.held
  g.held = []
  g.heldBytes = 0
  for (const w of held) {
    if (w.settle !== null && w.settle.client !== null) {
      const c = s.clients.get(w.settle.client)
      if (c !== undefined) notice(s, c, code, detail, w.settle.id)
      else answerAbsent(s, w.settle.client, w.settle.id, code)
    }
    giveBack(s, w.from, w.credit)
  }
}

/**
 * The tunnel is back in the same epoch: held bytes are written in order at the positions that continue from
 * `hello.wrote`. Clients in `lost` had a message lost in the dying tunnel (told `resend`): their held messages were
 * sent after it, so they are told `resend` too rather than written ahead of it (the SDK resends in id order).
 */
export const flushHeld = (s: SessionState, lost: ReadonlySet<ClientId>): void => {
  const g = s.guest
  const st = g.stream
  if (st !== null && lost.has(st.client)) {
    g.stream = null
    dropHeldStream(s, st)
    const c = s.clients.get(st.client)
    if (c !== undefined) dropInbound(s, c, "resend", "an earlier message of yours was lost with the bridge tunnel")
  }
  const held = g.held
  g.held = []
  g.heldBytes = 0
  if (held.length > 0) metric(s, "vdrelay_guest_held_flushes_total")
  for (const w of held) {
    if (w.from === null || !lost.has(w.from)) {
      writeOut(s, w.port, w.bytes, w.end, w.from, w.settle, w.credit)
      continue
    }
    if (w.settle !== null) {
      const c = s.clients.get(w.from)
      if (c !== undefined) notice(s, c, "resend", "an earlier message of yours was lost with the bridge tunnel", w.settle.id)
      else answerAbsent(s, w.from, w.settle.id, "resend")
    }
    giveBack(s, w.from, w.credit)
  }
  if (g.stream !== null && g.stream.heldCredit > 0) {
    giveBack(s, g.stream.client, g.stream.heldCredit)
    g.stream.heldCredit = 0
  }
  if (g.mousePending !== null && agentTakesMouse(s)) sendMouse(s, g.mousePending)
}
