// The agent's own ANNOUNCE_CAPABILITIES, collected whole by agent-route.ts: cached, a restart detected (spec §5.7
// case 7), clients told, and handed to the controller to answer.
import { decodeAnnounceCapabilities } from "../protocol/codec-misc.ts"
import type { SessionState } from "./state.ts"
import { abandonAgentMessages } from "./agent-msgs.ts"
import { capsKnown, sendAnnounceTo, syncAgentState, tellAgentLost } from "./agent-view.ts"
import { log, metric } from "./emit.ts"
import { discardGuestBound } from "./guest-discard.ts"

/** A whole ANNOUNCE_CAPABILITIES from the agent: cache, detect a restart, tell clients, hand it to the controller. */
export const agentAnnounced = (s: SessionState, payload: Uint8Array, seq: number): void => {
  const r = decodeAnnounceCapabilities(payload)
  if (r._tag !== "Ok") {
    metric(s, "vdrelay_agent_drops_total", { reason: "invalid" })
    return log(s, "warn", "agent announce invalid", { detail: r.detail })
  }
  if (s.port === "closed") s.port = "open" // its bytes prove the port open (QMP events can lag ~1 s, spec §12)
  if (r.value.request && s.capsSeen) {
    // Case 7: a restarted agent announces unprompted; what was sent to the old one is gone with it, and clients
    // hear "disconnected" before "connected" so they reset what they held for the old agent.
    metric(s, "vdrelay_agent_restarts_total")
    log(s, "info", "agent restarted", {})
    abandonAgentMessages(s, "dropped-by-disconnect", false)
    discardGuestBound(s, "dropped-by-disconnect", "the agent restarted")
    tellAgentLost(s)
  }
  capsKnown(s, r.value.caps)
  syncAgentState(s, true)
  const ctl = s.controller === null ? undefined : s.clients.get(s.controller)
  if (ctl !== undefined) sendAnnounceTo(s, ctl, r.value.request, seq)
}
