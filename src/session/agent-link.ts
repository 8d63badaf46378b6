// The agent's presence as clients see it, and every reset tied to it (spec §5.5, §5.7 cases 1, 2 and 7): agent gone,
// agent (re)attached, agent restarted (an unprompted ANNOUNCE(request=1)), garbage in its stream.
import { Cap, MessageType, Port } from "../protocol/constants.ts"
import { buildCaps } from "../protocol/caps.ts"
import { decodeAnnounceCapabilities, encodeAnnounceCapabilities } from "../protocol/codec-misc.ts"
import type { NoticeCode } from "../link/types.ts"
import type { SessionState } from "./state.ts"
import { enqueue } from "./client-queue.ts"
import { log, metric, notice } from "./emit.ts"
import { abandonAgentMessages, editedCaps, sendAnnounceTo } from "./agent-route.ts"
import { streamAbort, writable, writeWhole } from "./guest-out.ts"
import { dropInbound } from "./client-in.ts"
import { answerAbsent } from "./seats.ts"
import { discardHeld } from "./hold.ts"

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

/** Whether clients should see the agent as connected (a tunnel blip within its grace period does not count). */
export const agentPresent = (s: SessionState): boolean => (s.bridge !== null || s.graceUntil !== null) && s.chardev && s.port !== "closed"

/** Tells every client the agent state when it changed (or `force`): `agent` frames are ordered after aborts. */
export const syncAgentState = (s: SessionState, force = false): void => {
  const connected = agentPresent(s)
  if (connected === s.told && !force) return
  s.told = connected
  const caps = connected ? editedCaps(s) : null
  for (const c of s.clients.values()) enqueue(s, c, { frame: { t: "agent", connected, caps }, bytes: 0 })
}

/**
 * Guest-bound work that can no longer reach the agent it was meant for: the half-streamed message is aborted and
 * every message not yet confirmed written (or held while the tunnel was down) is reported to its sender; inbound
 * messages being stored are dropped too.
 */
export const discardGuestBound = (s: SessionState, code: NoticeCode, detail: string): void => {
  const g = s.guest
  for (const c of s.clients.values()) if (c.inMsg !== null && c.inMsg.mode !== "drop") dropInbound(s, c, code, detail)
  streamAbort(s)
  for (const f of g.inflight) {
    const c = f.client === null ? undefined : s.clients.get(f.client)
    if (c !== undefined) notice(s, c, code, detail, f.id)
    else if (f.client !== null) answerAbsent(s, f.client, f.id, code)
  }
  g.inflight = []
  discardHeld(s, code, detail)
  // The agent these transfers were open on is gone (or reset).
  for (const c of s.clients.values()) c.xfers.clear()
  g.mouseEnd = null
  g.mousePending = null
}

/** Case 1: the agent went away (chardev lost, guest port closed, tunnel gone for good). */
export const agentGone = (s: SessionState, why: string, keepCaps: boolean): void => {
  log(s, "info", "agent gone", { why })
  metric(s, "vdrelay_agent_disconnects_total", { why })
  abandonAgentMessages(s, "dropped-by-disconnect", false)
  discardGuestBound(s, "dropped-by-disconnect", `the agent went away (${why})`)
  if (!keepCaps) {
    s.rawCaps = null
    s.capsSeen = false
    s.persistDirty = true
  }
  syncAgentState(s)
}

/** Case 2: an agent is (again) reachable: clients are told, and its caps are asked for (it does not re-announce). */
export const agentCame = (s: SessionState, announce: boolean): void => {
  syncAgentState(s)
  if (announce && writable(s)) relayAnnounce(s)
}

/** ANNOUNCE_CAPABILITIES(request=1) on the client port, with the controller's caps or the relay's default set. */
export const relayAnnounce = (s: SessionState): void => {
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
    if (s.told) for (const c of s.clients.values()) enqueue(s, c, { frame: { t: "agent", connected: false, caps: null }, bytes: 0 })
    s.told = false
  }
  s.rawCaps = r.value.caps
  s.capsSeen = true
  s.persistDirty = true
  syncAgentState(s, true)
  const ctl = s.controller === null ? undefined : s.clients.get(s.controller)
  if (ctl !== undefined) sendAnnounceTo(s, ctl, r.value.request, seq)
}
