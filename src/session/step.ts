// step(): one event to the module that owns it, then the end-of-step upkeep every event shares: queue caps,
// acknowledgement of agent bytes (with Persist first), attachments.
import type { SessionState } from "./state.ts"
import type { SessionCommand, SessionEvent } from "./types.ts"
import { bridgeAttached, bridgeDetached, bridgeFrame, closeBridge, timerFired } from "./tunnel.ts"
import { clientJoined, clientLeft, closeClient } from "./clients.ts"
import { onClientFrame } from "./client-in.ts"
import { frontier, queueCap } from "./client-queue.ts"
import { log, metric } from "./emit.ts"
import { applyPolicy } from "./policy.ts"
import { bridgeAttachment, clientAttachment, persistedOf } from "./persist.ts"
import { expireSeats } from "./seats.ts"
import { armTimer, timerDone } from "./timer.ts"
import { confirmLimit, releaseReplay } from "./confirms.ts"

export const stepSession = (s: SessionState, e: SessionEvent): { state: SessionState; commands: SessionCommand[] } => {
  s.out = []
  s.now = e.now
  dispatch(s, e)
  upkeep(s)
  const commands = s.out
  s.out = []
  return { state: s, commands }
}

const dispatch = (s: SessionState, e: SessionEvent): void => {
  switch (e._tag) {
    case "BridgeAttached": return bridgeAttached(s, e)
    case "BridgeDetached": return bridgeDetached(s, e.cause, e.now)
    case "BridgeFrameReceived": return bridgeFrame(s, e.frame, e.now)
    case "ClientJoined": return clientJoined(s, e)
    case "ClientLeft": return clientLeft(s, e.client, e.cause)
    case "ClientFrameReceived": {
      const c = s.clients.get(e.client)
      return c === undefined ? undefined : onClientFrame(s, c, e.frame)
    }
    case "FrameRejected":
      if (e.from === "bridge") return closeBridge(s, e.detail, e.now)
      {
        const c = s.clients.get(e.from.client)
        if (c !== undefined) {
          metric(s, "vdrelay_client_protocol_errors_total")
          closeClient(s, c, "protocol", e.detail, "protocol")
        }
      }
      return
    case "TimerFired":
      timerDone(s)
      expireSeats(s, e.now)
      return timerFired(s, e.now)
    case "PolicyChanged": return applyPolicy(s, e.policy)
  }
}

export const upkeep = (s: SessionState): void => {
  for (const c of [...s.clients.values()]) {
    if (c.queued > queueCap(s, c)) {
      log(s, "warn", "slow consumer closed", { client: c.id, role: c.role, queued: c.queued })
      metric(s, "vdrelay_slow_consumers_total", { role: c.role })
      closeClient(s, c, "slow-consumer", `${c.queued} bytes queued, over the cap ${queueCap(s, c)}`, "slow-consumer")
    }
  }
  releaseReplay(s)
  const ack = acknowledge(s)
  armTimer(s)
  // Persist precedes the ack it covers: the output gate holds the ack until storage has the position.
  if (s.persistDirty) {
    s.persistDirty = false
    s.out.push({ _tag: "Persist", state: persistedOf(s) })
  }
  if (ack !== null && s.bridge !== null) s.out.push({ _tag: "SendToBridge", frame: { t: "ack", epoch: s.epoch, pos: ack } })
  for (const c of s.clients.values()) {
    if (!c.dirty) continue
    c.dirty = false
    s.out.push({ _tag: "SetAttachment", link: { client: c.id }, data: clientAttachment(s, c) })
  }
  if (s.bridge?.dirty === true) {
    s.bridge.dirty = false
    s.out.push({ _tag: "SetAttachment", link: "bridge", data: bridgeAttachment(s) })
  }
}

/**
 * Acknowledges agent bytes up to the latest safe point that every client has been sent (so a restart replays what a
 * client had not yet received): a slow controller therefore back-pressures the bridge. A viewer that holds the window
 * shut is closed instead.
 */
const acknowledge = (s: SessionState): number | null => {
  const a = s.stream
  let limit = Infinity
  let holder: string | null = null
  for (const c of s.clients.values()) {
    const f = Math.min(frontier(c), confirmLimit(s, c))
    if (f < limit) {
      limit = f
      holder = c.id
    }
  }
  let k = -1
  for (let i = 0; i < a.safe.length && a.safe[i]!.pos <= limit; i++) k = i
  let ack: number | null = null
  if (k >= 0) {
    const p = a.safe[k]!
    // Batched: at a catch-up that ends a message, otherwise every quarter of the window. Every ack is persisted first
    // (a storage write the output gate waits for), so acking each catch-up inside a streamed message (one per
    // bridge frame) cost most of the relay's CPU on a 10 MiB agent message (docs/benchmarks.md).
    if ((p.pos === a.pos && p.resume === null) || p.pos - a.acked >= s.limits.agentWindow / 4) {
      a.acked = p.pos
      a.ackedResume = p.resume
      a.safe.splice(0, k + 1)
      s.persistDirty = true
      ack = p.pos
    }
  }
  if (holder !== null && a.pos - a.acked >= s.limits.agentWindow) {
    const c = s.clients.get(holder)!
    if (c.role === "viewer") {
      metric(s, "vdrelay_slow_consumers_total", { role: "viewer" })
      closeClient(s, c, "slow-consumer", "the viewer fell a whole agent window behind", "slow-consumer")
      return acknowledge(s) ?? ack
    }
  }
  return ack
}
