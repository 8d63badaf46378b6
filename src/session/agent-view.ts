// The agent as clients see it (owner of `told`, `rawCaps` and `capsSeen`): connected or not, and its caps as the
// policy edits them.
import { MessageType } from "../protocol/constants.ts"
import { editAgentCaps } from "../protocol/caps.ts"
import { encodeAnnounceCapabilities } from "../protocol/codec-misc.ts"
import type { ClientSide, SessionState } from "./state.ts"
import { enqueue } from "./client-queue.ts"
import { reachable } from "./reach.ts"

/** The agent's caps as clients see them (edited by policy); null while none are known. */
export const editedCaps = (s: SessionState): number[] | null => (s.rawCaps === null ? null : editAgentCaps(s.rawCaps, s.policy))

/** The agent announced (or answered with) `caps` in this epoch. */
export const capsKnown = (s: SessionState, caps: ReadonlyArray<number>): void => {
  s.rawCaps = caps
  s.capsSeen = true
  s.persistDirty = true
}

/** The agent's caps are no longer known (it went away, or a new connection began). */
export const forgetCaps = (s: SessionState): void => {
  s.rawCaps = null
  s.capsSeen = false
  s.persistDirty = true
}

/** Tells every client the agent state when it changed (or `force`): `agent` frames are ordered after aborts. */
export const syncAgentState = (s: SessionState, force = false): void => {
  const connected = reachable(s)
  if (connected === s.told && !force) return
  s.told = connected
  const caps = connected ? editedCaps(s) : null
  for (const c of s.clients.values()) enqueue(s, c, { frame: { t: "agent", connected, caps }, bytes: 0 })
}

/** Clients hear "disconnected" now (the agent restarted), before the "connected" that follows its announce. */
export const tellAgentLost = (s: SessionState): void => {
  if (s.told) for (const c of s.clients.values()) enqueue(s, c, { frame: { t: "agent", connected: false, caps: null }, bytes: 0 })
  s.told = false
}

/** Sends the agent's caps as clients see them to one client, as the agent message `seq`. */
export const sendAnnounceTo = (s: SessionState, c: ClientSide, request: boolean, seq: number): void => {
  const caps = editedCaps(s) ?? []
  const enc = encodeAnnounceCapabilities({ _tag: "AnnounceCapabilities", request, caps })
  if (enc._tag !== "Ok") return
  enqueue(s, c, { frame: { t: "msg", seq, type: MessageType.AnnounceCapabilities, size: enc.value.length, data: enc.value, end: true }, bytes: enc.value.length, seq })
}
