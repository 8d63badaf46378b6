// The bridge link (the tunnel from the bridge process, src/bridge/): attach (resume in the same epoch, or a new agent connection), tunnel loss with a grace period
// (spec §5.7 case 5: a blip loses nothing), chardev and guest-port levels, agent data with positions, `wrote`.
import type { BridgeToRelay } from "../link/types.ts"
import { LINK_VERSION } from "../link/types.ts"
import type { SessionState } from "./state.ts"
import type { LeaveCause, SessionEvent } from "./types.ts"
import { agentCame, agentGone } from "./agent-link.ts"
import { abandonAgentMessages } from "./agent-msgs.ts"
import { feedAgent, newAgentStream, restartStream, resumeStream } from "./agent-stream.ts"
import { forgetCaps, syncAgentState } from "./agent-view.ts"
import { log, metric } from "./emit.ts"
import { discardGuestBound } from "./guest-discard.ts"
import { failInflight, forgetMouse, guestWrote, restartPositions, serverWrote, streamAbort, unsureAnswered } from "./guest-out.ts"
import { flushHeld } from "./hold.ts"
import { forgetPositions } from "./client-queue.ts"
import { dropInbound } from "./inbound.ts"
import { seatsNewEpoch } from "./seats.ts"
import { continuation, takeHandover } from "./handover.ts"

type Hello = Extract<BridgeToRelay, { t: "hello" }>

/** Closes the bridge link (protocol breach): handled as a tunnel loss. */
export const closeBridge = (s: SessionState, detail: string, now: number): void => {
  if (s.bridge === null) return
  metric(s, "vdrelay_bridge_protocol_errors_total")
  s.out.push({ _tag: "SendToBridge", frame: { t: "error", code: "protocol", detail } })
  s.out.push({ _tag: "CloseBridge", code: "protocol", detail })
  bridgeDetached(s, "protocol", now)
}

export const bridgeAttached = (s: SessionState, e: Extract<SessionEvent, { _tag: "BridgeAttached" }>): void => {
  const h = e.hello
  if (s.bridge !== null) bridgeDetached(s, "replaced", e.now)
  if (h.v !== LINK_VERSION || !Number.isSafeInteger(h.epoch) || !Number.isSafeInteger(h.from) || h.from < 0 || !Number.isSafeInteger(h.wrote) || h.wrote < 0) {
    const detail = `bad bridge hello (v ${h.v})`
    s.out.push({ _tag: "SendToBridge", frame: { t: "error", code: "protocol", detail } })
    s.out.push({ _tag: "CloseBridge", code: "protocol", detail })
    return
  }
  s.bridge = { id: h.bridge, dirty: true }
  s.graceUntil = null
  metric(s, "vdrelay_bridge_attaches_total")
  // A live migration's destination continues the agent connection the source handed over (handover.ts).
  const cont = continuation(s, h)
  if (cont !== null) resume(s, cont.hello, { agentBase: cont.agentBase, guestBase: cont.guestBase })
  else if (h.epoch === s.epoch) resume(s, h)
  else newEpoch(s, h)
}

/**
 * Same chardev connection: whole messages the bridge confirms are acked, the rest reported; agent bytes resume; what
 * was held while the tunnel was down is written.
 */
const resume = (s: SessionState, h: Hello, base?: { agentBase: number; guestBase: number }): void => {
  const g = s.guest
  // After a restart that lost the bridge link the relay does not know its positions: the hello's are the truth.
  if (h.wrote > g.wpos && g.known) log(s, "warn", "bridge wrote past what was sent", { wrote: h.wrote, wpos: g.wpos })
  unsureAnswered(s, h.epoch)
  guestWrote(s, Math.min(h.wrote, g.wpos))
  const lost = failInflight(s, "resend", "the bridge tunnel dropped before this message was written")
  restartPositions(s, h.wrote)
  s.out.push({ _tag: "SendToBridge", frame: { t: "welcome", v: LINK_VERSION, epoch: s.epoch, ack: s.stream.acked, window: s.limits.agentWindow, ...base } })
  s.rewindTo = null
  if (h.from > s.stream.pos) gap(s, h.from)
  const was = s.chardev && s.port !== "closed"
  s.chardev = h.chardev
  s.port = h.port
  if (!h.chardev) agentGone(s, "chardev", false)
  else if (h.port === "closed") agentGone(s, "port-closed", false)
  else {
    // Same connection: an agent whose caps we hold has never seen a new client. Asking again (request=1) would reset
    // its grab serials behind the controller's back, which would then ignore the guest's grabs as stale.
    agentCame(s, !was && !s.capsSeen)
    flushHeld(s, lost)
  }
}

/** A new chardev connection (or the first): everything of the old agent is reset, the new one is asked for its caps. */
const newEpoch = (s: SessionState, h: Hello): void => {
  if (s.chardev) agentGone(s, "new-epoch", false)
  abandonAgentMessages(s, "dropped-by-disconnect", true)
  discardGuestBound(s, "dropped-by-disconnect", "the agent connection was replaced")
  s.epoch = h.epoch
  s.handover = null
  // Positions restart with the connection: nothing a console got of an earlier one is a replay now, even when a
  // bridge reuses an epoch number (restarted within the same second, clock stepped back).
  for (const c of s.clients.values()) forgetPositions(c)
  seatsNewEpoch(s)
  s.stream = newAgentStream(s.limits, h.from, h.from === 0 ? "parse" : "scan")
  s.rewindTo = null
  restartPositions(s, h.wrote)
  // The attachment must name the new epoch even if nothing is written in this step.
  if (s.bridge !== null) s.bridge.dirty = true
  forgetCaps(s)
  s.chardev = h.chardev
  s.port = h.port
  s.persistDirty = true
  s.out.push({ _tag: "SendToBridge", frame: { t: "welcome", v: LINK_VERSION, epoch: s.epoch, ack: h.from, window: s.limits.agentWindow } })
  if (h.chardev && h.port !== "closed") agentCame(s, true)
  else syncAgentState(s)
}

/** The bridge cannot supply agent bytes from where the relay stands: what was in progress is lost; resynchronise. */
const gap = (s: SessionState, from: number): void => {
  metric(s, "vdrelay_agent_gaps_total")
  log(s, "warn", "agent stream gap", { expected: s.stream.pos, from })
  abandonAgentMessages(s, "dropped-by-disconnect", true)
  // Nothing before `from` exists any more: acknowledge up to it so the window starts there.
  resumeStream(s, from, { _tag: "Scan" })
  s.persistDirty = true
}

/** Tunnel gone: the half-streamed message is aborted (its sender resends); the agent stays "connected" for a grace. */
export const bridgeDetached = (s: SessionState, cause: LeaveCause, now: number): void => {
  if (s.bridge === null) return
  metric(s, "vdrelay_bridge_detaches_total", { cause })
  // The link is gone: nothing more is sent on it (the bridge drops its partial messages itself).
  s.bridge = null
  for (const c of s.clients.values()) if (c.inMsg?.mode === "stream") dropInbound(s, c, "resend", "the bridge tunnel dropped mid-message")
  streamAbort(s)
  forgetMouse(s)
  if (s.chardev && s.port !== "closed") {
    s.graceUntil = now + s.limits.bridgeGraceMs
  }
}

export const timerFired = (s: SessionState, now: number): void => {
  if (s.graceUntil === null || now < s.graceUntil) return
  s.graceUntil = null
  agentGone(s, "bridge-lost", true)
}

export const bridgeFrame = (s: SessionState, f: BridgeToRelay, now: number): void => {
  if (s.bridge === null) return
  switch (f.t) {
    case "hello": return closeBridge(s, "hello after the link was established", now)
    case "ping": return void s.out.push({ _tag: "SendToBridge", frame: { t: "pong", n: f.n } })
    case "handover": return void (takeHandover(s, f) && bridgeDetached(s, "closed", now))
    case "data": return onData(s, f, now)
    case "wrote":
      if (f.epoch !== s.epoch) return
      if (!Number.isSafeInteger(f.pos) || f.pos > s.guest.wpos) return closeBridge(s, `wrote ${f.pos} past ${s.guest.wpos}`, now)
      if (f.server !== undefined && f.server > s.guest.wpos) return closeBridge(s, `wrote server ${f.server} past ${s.guest.wpos}`, now)
      if (f.server !== undefined) serverWrote(s, f.server)
      return guestWrote(s, f.pos)
    case "chardev":
      if (f.up && f.epoch !== s.epoch) {
        return newEpoch(s, { t: "hello", v: LINK_VERSION, bridge: s.bridge.id, epoch: f.epoch, chardev: true, from: 0, wrote: 0, port: s.port === "closed" ? "unknown" : s.port })
      }
      if (!f.up && f.epoch === s.epoch && s.chardev) {
        s.chardev = false
        s.bridge.dirty = true
        return agentGone(s, "chardev", false)
      }
      return
    case "port": {
      if (f.epoch !== s.epoch) return
      const open = f.open ? "open" : "closed"
      if (open === s.port) return
      const was = s.port
      s.port = open
      s.bridge.dirty = true
      if (!f.open) {
        // A closed port drops what the old opener had half written; what follows may start mid-stream: rescan.
        agentGone(s, "port-closed", false)
        abandonAgentMessages(s, "dropped-by-disconnect", true)
        return restartStream(s, s.stream.pos, "scan")
      }
      // A reopened port: spice-vdagentd announces itself on a fresh start, but not after reopening its port on an error
      // (spec §6), so the relay asks, as on a new epoch. Not when the opener's own announce already arrived (its bytes
      // can precede the QMP event by ~1 s, spec §12). Also on unknown → open when no caps came: the request sent when
      // the epoch began may have met a port the bridge knew closed, and the bridge drops what a closed port would hold.
      return agentCame(s, !s.capsSeen)
    }
  }
}

const onData = (s: SessionState, f: Extract<BridgeToRelay, { t: "data" }>, now: number): void => {
  if (f.epoch !== s.epoch) return metric(s, "vdrelay_agent_stale_frames_total")
  // Not taken while consoles that may lack what the crash lost are away: the bridge is rewound when they are back.
  if (s.replayHold) return metric(s, "vdrelay_agent_held_frames_total")
  const a = s.stream
  if (!Number.isSafeInteger(f.pos) || f.pos < 0) return closeBridge(s, `data at ${f.pos}`, now)
  if (f.pos + f.bytes.length > a.acked + s.limits.agentWindow + s.limits.agentWindow / 8)
    return closeBridge(s, `data up to ${f.pos + f.bytes.length} beyond the window (ack ${a.acked})`, now)
  if (f.pos > a.pos) {
    // Sent before the bridge saw our rewind: the replay from `rewindTo` follows.
    if (s.rewindTo !== null) return metric(s, "vdrelay_agent_stale_frames_total")
    gap(s, f.pos)
  }
  s.rewindTo = null
  const skip = s.stream.pos - f.pos
  if (skip >= f.bytes.length) return metric(s, "vdrelay_agent_duplicate_frames_total")
  feedAgent(s, skip > 0 ? f.bytes.subarray(skip) : f.bytes)
}
