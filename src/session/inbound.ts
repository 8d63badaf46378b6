// Giving up a client's message while it is arriving: the one step every layer above takes when a message being
// received can no longer reach the agent (role or policy change, tunnel loss, agent reset, held bytes over the cap).
import type { NoticeCode } from "../link/types.ts"
import type { ClientSide, SessionState } from "./state.ts"
import { notice } from "./answers.ts"
import { returnCredit } from "./credit.ts"
import { streamAbort } from "./guest-out.ts"

/** Stops relaying the message `c` is sending: its sender is told; the rest of its frames are consumed silently. */
export const dropInbound = (s: SessionState, c: ClientSide, code: NoticeCode, detail: string): void => {
  const m = c.inMsg
  if (m === null || m.mode === "drop") return
  if (m.mode === "stream" && s.guest.stream?.client === c.id) streamAbort(s)
  if (m.mode === "store") c.creditFree += m.received
  m.mode = "drop"
  m.buf = new Uint8Array(0)
  notice(s, c, code, detail, m.id, m.type)
  returnCredit(s, c)
}
