// File transfers clients have open on the agent (owner of ClientSide.xfers): started by a console's FILE_XFER_START,
// ended by a final FILE_XFER_STATUS from either side or by a reset of the agent's client side. Those still open when a
// controller's link is lost are cancelled (control.ts).
import type { ClientSide, SessionState } from "./state.ts"

/** The agent keeps at most 128 transfers (spec §11); a console cannot have more open. */
const MAX_XFERS = 128

export const xferStarted = (c: ClientSide, id: number): void => {
  c.xfers.add(id)
  if (c.xfers.size > MAX_XFERS) c.xfers.delete(c.xfers.values().next().value!)
}

/** A transfer ended (a final FILE_XFER_STATUS from either side). */
export const xferEnded = (s: SessionState, id: number): void => {
  for (const c of s.clients.values()) c.xfers.delete(id)
}

/** The agent's client side was reset or replaced: it ended every transfer. */
export const xfersEnded = (s: SessionState): void => {
  for (const c of s.clients.values()) c.xfers.clear()
}

/** Takes the transfers `c` has open (they are being cancelled). */
export const takeXfers = (c: ClientSide): number[] => {
  const ids = [...c.xfers]
  c.xfers.clear()
  return ids
}
