// Live policy changes: what is in progress and no longer allowed is dropped (senders told), clients get the agent
// caps as the new policy edits them.
import type { Policy } from "../link/types.ts"
import type { SessionState } from "./state.ts"
import { log } from "./emit.ts"
import { recheckRecipients } from "./agent-msgs.ts"
import { syncAgentState } from "./agent-view.ts"
import { dropInbound } from "./inbound.ts"
import { checkHeader } from "./validate.ts"

const validPolicy = (p: Policy): boolean =>
  typeof p.copyPaste === "boolean" &&
  typeof p.fileTransfer === "boolean" &&
  typeof p.viewersSeeClipboard === "boolean" &&
  Number.isSafeInteger(p.maxClipboardBytes) &&
  p.maxClipboardBytes >= 0 &&
  Number.isSafeInteger(p.maxMessageBytes) &&
  p.maxMessageBytes >= 0

export const applyPolicy = (s: SessionState, p: Policy): void => {
  if (!validPolicy(p)) return log(s, "error", "policy refused", { detail: JSON.stringify(p) })
  const before = s.policy
  s.policy = { ...p }
  s.persistDirty = true
  log(s, "info", "policy changed", { copyPaste: p.copyPaste, fileTransfer: p.fileTransfer, maxClipboardBytes: p.maxClipboardBytes })
  for (const c of s.clients.values()) {
    const m = c.inMsg
    if (m !== null && m.mode !== "drop") {
      const no = checkHeader(m.type, m.size, s.policy, s.limits, s.rawCaps)
      if (no !== undefined) dropInbound(s, c, no.code, no.detail)
    }
    recheckRecipients(s, c, "dropped-by-policy")
  }
  if (before.copyPaste !== p.copyPaste || before.fileTransfer !== p.fileTransfer) {
    if (s.told && s.rawCaps !== null) syncAgentState(s, true)
  }
}
