// Store-and-forward while the bridge tunnel is down within its grace (spec §5.7 case 5: a blip loses nothing, in
// either direction). The agent is still "connected" for clients, so their messages are accepted and held, in order,
// with the sender's credit withheld (held.ts; a streamed CLIPBOARD's sender waits once its credit is spent); they are
// written when the tunnel comes back in the same epoch, and reported `dropped-by-disconnect` if it does not.
import type { NoticeCode } from "../link/types.ts"
import type { SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { answer } from "./answers.ts"
import { giveBack } from "./credit.ts"
import { metric } from "./emit.ts"
import { abandonHeldStream, sendMouse, writeOut } from "./guest-out.ts"
import { releaseStreamCredit, takeHeld } from "./held.ts"
import { dropInbound } from "./inbound.ts"
import { agentTakesMouse } from "./reach.ts"

/** Held messages that will never be written (grace over, agent gone or replaced): their senders are told. */
export const discardHeld = (s: SessionState, code: NoticeCode, detail: string): void => {
  for (const w of takeHeld(s)) {
    if (w.settle !== null && w.settle.client !== null) answer(s, w.settle.client, w.settle.id, code, detail)
    giveBack(s, w.from, w.credit)
  }
}

const LOST = "an earlier message of yours was lost with the bridge tunnel"

/**
 * The tunnel is back in the same epoch: held bytes are written in order at the positions that continue from
 * `hello.wrote`. Clients in `lost` had a message lost in the dying tunnel (told `resend`): their held messages were
 * sent after it, so they are told `resend` too rather than written ahead of it (the SDK resends in id order).
 */
export const flushHeld = (s: SessionState, lost: ReadonlySet<ClientId>): void => {
  const st = s.guest.stream
  if (st !== null && lost.has(st.client)) {
    abandonHeldStream(s)
    const c = s.clients.get(st.client)
    if (c !== undefined) dropInbound(s, c, "resend", LOST)
  }
  const held = takeHeld(s)
  if (held.length > 0) metric(s, "vdrelay_guest_held_flushes_total")
  for (const w of held) {
    if (w.from === null || !lost.has(w.from)) {
      writeOut(s, w.port, w.bytes, w.end, w.from, w.settle, w.credit, w.key)
      continue
    }
    if (w.settle !== null) answer(s, w.from, w.settle.id, "resend", LOST)
    giveBack(s, w.from, w.credit)
  }
  releaseStreamCredit(s)
  if (s.guest.mousePending !== null && agentTakesMouse(s)) sendMouse(s, s.guest.mousePending)
}
