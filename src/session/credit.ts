// Client→relay credit given back: for bytes forwarded or dropped, once the guest keeps up (`wrote` gives it otherwise).
import type { ClientSide, SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { enqueue, present } from "./client-queue.ts"

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

/** Frees `bytes` of credit withheld for `client`'s message (written or dropped) and gives back what it can. */
export const giveBack = (s: SessionState, client: ClientId | null, bytes: number): void => {
  const c = client === null || bytes === 0 ? undefined : s.clients.get(client)
  if (c === undefined) return
  c.creditFree += bytes
  returnCredit(s, c)
}
