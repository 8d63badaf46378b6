// The agent's presence as clients see it, and every reset tied to it (spec §5.5, §5.7 cases 1 and 2): agent gone,
// agent (re)attached and asked for its caps. Its restart (case 7) is seen in its announce (agent-announce.ts).
import { Cap, MessageType, Port } from "../protocol/constants.ts"
import { buildCaps } from "../protocol/caps.ts"
import { encodeAnnounceCapabilities } from "../protocol/codec-misc.ts"
import type { SessionState } from "./state.ts"
import { abandonAgentMessages } from "./agent-msgs.ts"
import { forgetCaps, syncAgentState, tellAgentLost } from "./agent-view.ts"
import { log, metric } from "./emit.ts"
import { discardGuestBound } from "./guest-discard.ts"
import { streamAbort, writeWhole } from "./guest-out.ts"
import { dropInbound } from "./inbound.ts"
import { writable } from "./reach.ts"

/** Caps the relay announces for itself when no controller is there (what spice-gtk announces). */
export const RELAY_DEFAULT_CAPS: ReadonlyArray<number> = buildCaps([
  Cap.MouseState,
  Cap.MonitorsConfig,
  Cap.Reply,
  Cap.ClipboardByDemand,
  Cap.ClipboardSelection,
  Cap.MonitorsConfigPosition,
  Cap.FileXferDetailedErrors,
  Cap.ClipboardNoReleaseOnRegrab,
  Cap.ClipboardGrabSerial,
])

/** Case 1: the agent went away (chardev lost, guest port closed, tunnel gone for good). */
export const agentGone = (s: SessionState, why: string, keepCaps: boolean): void => {
  log(s, "info", "agent gone", { why })
  metric(s, "vdrelay_agent_disconnects_total", { why })
  abandonAgentMessages(s, "dropped-by-disconnect", false)
  discardGuestBound(s, "dropped-by-disconnect", `the agent went away (${why})`)
  if (!keepCaps) forgetCaps(s)
  syncAgentState(s)
}

/**
 * Case 2: an agent is (again) reachable: its caps are asked for (it does not re-announce), and clients are told, after
 * the request, so that they hear of the agent session it ends before the agent they now see.
 */
export const agentCame = (s: SessionState, announce: boolean): void => {
  if (announce && writable(s)) relayAnnounce(s)
  syncAgentState(s)
}

/**
 * ANNOUNCE_CAPABILITIES(request=1) on the client port, with the controller's caps or the relay's default set.
 *
 * To spice-vdagentd a request=1 is a new client (do_client_capabilities): it reports the old one disconnected (its
 * session agent gives up the clipboard the console had put there, its transfers end), zeroes its clipboard grab
 * serials and answers request=0. Consoles that see the agent as connected are told it went away first, as spice-server
 * tells spice-gtk AGENT_DISCONNECTED before AGENT_CONNECTED: they reset their serials, grabs and waiting requests, and a
 * controller introduces itself again (its own request=1, after this one), so both ends count serials from the same
 * point of the console's stream (docs/protocol.md, bridge link rule 3).
 */
const relayAnnounce = (s: SessionState): void => {
  if (s.told) tellAgentLost(s)
  // A console's message half written on the client port would be cut in two by this one (the agent reassembles per
  // port): it is given up first, and its sender told to send it again.
  const st = s.guest.stream
  if (st !== null) {
    const c = s.clients.get(st.client)
    if (c !== undefined) dropInbound(s, c, "resend", "the agent was asked for its caps while this message was being written")
    else streamAbort(s)
  }
  const ctl = s.controller === null ? undefined : s.clients.get(s.controller)
  const caps = ctl?.caps ?? RELAY_DEFAULT_CAPS
  const enc = encodeAnnounceCapabilities({ _tag: "AnnounceCapabilities", request: true, caps })
  if (enc._tag === "Ok") writeWhole(s, Port.Client, MessageType.AnnounceCapabilities, enc.value, null)
}
