// Agent messages in progress towards clients (owner of `stream.msgs` entries once begun, agent-route.ts): who may see
// them, and taking them back from a client (role or policy change) or from everyone (the agent stream broke or reset).
import type { NoticeCode } from "../link/types.ts"
import { MessageType } from "../protocol/constants.ts"
import type { ClientSide, SessionState } from "./state.ts"
import { withdraw } from "./client-queue.ts"
import { isClipboardType, isFileXferType, policyAllows } from "./validate.ts"

/** Whether client `c` may see agent messages of `type` (viewers: no file transfer, clipboard only by policy). */
export const mayReceive = (s: SessionState, c: ClientSide, type: number): boolean => {
  if (type === MessageType.AnnounceCapabilities) return c.role === "controller"
  if (isFileXferType(type)) return c.role === "controller"
  if (isClipboardType(type)) return c.role === "controller" || s.policy.viewersSeeClipboard
  return true
}

/**
 * Abandons every agent message in progress: clients that got part of one are told with `abort`, the rest of its bytes
 * will be consumed and dropped. `reset` also forgets them (the stream itself restarts).
 */
export const abandonAgentMessages = (s: SessionState, reason: NoticeCode, reset: boolean): void => {
  for (const [port, m] of s.stream.msgs) {
    if (m.drop === null) for (const id of m.to) {
      const c = s.clients.get(id)
      if (c !== undefined) withdraw(s, c, m.seq, reason)
    }
    if (reset) s.stream.msgs.delete(port)
    else s.stream.msgs.set(port, { ...m, drop: reason, to: new Set(), collect: null })
  }
}

/** Takes client `c` out of agent messages in progress that it may no longer see (role or policy change). */
export const recheckRecipients = (s: SessionState, c: ClientSide, reason: NoticeCode): void => {
  for (const m of s.stream.msgs.values()) {
    if (m.drop !== null || !m.to.has(c.id)) continue
    if (mayReceive(s, c, m.type) && policyAllows(s.policy, m.type)) continue
    m.to.delete(c.id)
    withdraw(s, c, m.seq, reason)
  }
}

/** A client left: it is no longer a recipient of agent messages in progress. */
export const forgetRecipient = (s: SessionState, id: ClientSide["id"]): void => {
  for (const m of s.stream.msgs.values()) {
    m.to.delete(id)
    m.started.delete(id)
  }
}
