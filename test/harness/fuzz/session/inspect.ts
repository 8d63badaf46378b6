// What the fuzz world checks on the way out of the actor, and what it can inject: frames must survive the link codecs,
// the session's memory budget must hold, and (for the oracle tests) one of five relay defects can corrupt the commands.
import { decodeRelayToBridge, encodeRelayToBridge } from "../../../../src/link/bridge-codec.ts"
import { decodeRelayToClient, encodeRelayToClient } from "../../../../src/link/client-codec.ts"
import type { RelayToBridge, RelayToClient } from "../../../../src/link/types.ts"
import type { SessionCommand, SessionState } from "../../../../src/session/index.ts"
import { heldCap } from "../../../../src/session/held.ts"
import { check } from "../engine.ts"

export const MAX_ATTACHMENT = 2048
export const MAX_PERSISTED = 128 * 1024
/** VDRELAY_FUZZ_TRACE=1 with `--replay` prints every event and command. */
export const TRACE = process.env.VDRELAY_FUZZ_TRACE === "1"
export const show = (x: unknown): string =>
  JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)).slice(0, 300)

/**
 * Injected relay bugs, for checking that the oracles notice them (test/unit/fuzz): each corrupts what the actor emits
 * the way a real defect would.
 */
export type Mutant = "drop-ack" | "drop-more" | "drop-notice" | "split-write" | "drop-abort"

/** Applies the defect to `c`: true when `c` is to be lost or was replaced by what went to `emit` instead. */
export const injectDefect = (mutant: Mutant, c: SessionCommand, emit: (c: SessionCommand) => void): boolean => {
  if (c._tag === "SendToClient") {
    const t = c.frame.t
    if (mutant === "drop-ack" && t === "ack") return true
    if (mutant === "drop-more" && t === "more" && c.frame.data.length > 0) return true
    if (mutant === "drop-notice" && t === "notice") return true
    if (mutant === "drop-abort" && t === "abort") return true
  }
  if (c._tag === "SendToBridge" && mutant === "split-write" && c.frame.t === "write" && c.frame.end && c.frame.data.length > 8) {
    // A message split in two "whole" writes: the first half is marked as the end of a message.
    const f = c.frame
    const half = f.data.length >> 1
    emit({ _tag: "SendToBridge", frame: { ...f, data: f.data.subarray(0, half), end: true } })
    emit({ _tag: "SendToBridge", frame: { ...f, pos: f.pos + half, data: f.data.subarray(half) } })
    return true
  }
  return false
}

/** What the actor holds for one session right now, bytes (DESIGN invariant 3). */
export const heldBytes = (s: SessionState): number => {
  let n = s.stream.tail.length
  for (const c of s.clients.values()) {
    n += c.queued
    if (c.inMsg !== null) n += c.inMsg.buf.length
  }
  for (const m of s.stream.msgs.values()) n += m.collect?.length ?? 0
  // Whole console messages held while the tunnel is down (a blip), waiting to be written.
  return n + s.guest.heldBytes
}

/** Every cap of the session's memory budget, after each batch of commands. */
export const checkBudget = (s: SessionState): void => {
  const cap = s.limits.clientQueueBytes * 2 + s.limits.storeAndForwardBytes * 2 + 4096
  for (const c of s.clients.values()) {
    check(c.queued <= cap, `client ${c.id} holds ${c.queued} queued bytes (queue cap ${s.limits.clientQueueBytes})`)
    check(c.items.length - c.head <= cap, `client ${c.id} has ${c.items.length - c.head} queued frames`)
  }
  const held = heldBytes(s)
  // Held console messages have their own cap (src/session/held.ts), checked by name.
  check(s.guest.heldBytes <= heldCap(s), `${s.guest.heldBytes} bytes of console messages held, cap ${heldCap(s)}`)
  const budget = s.clients.size * cap + s.limits.agentWindow + heldCap(s) + 64 * 1024
  check(held <= budget, `the session holds ${held} bytes, budget ${budget}`)
  check(s.stream.safe.length <= 1024, `${s.stream.safe.length} acknowledgement points`)
  check(s.guest.inflight.length <= 100_000, `${s.guest.inflight.length} messages in flight`)
}

export const roundTripClient = (f: RelayToClient): RelayToClient => {
  const d = decodeRelayToClient(encodeRelayToClient(f))
  check(d._tag === "Ok", `the actor sent a client frame that does not decode: ${d._tag === "Invalid" ? d.detail : ""}`)
  return d._tag === "Ok" ? d.value : f
}

export const roundTripBridge = (f: RelayToBridge): RelayToBridge => {
  const d = decodeRelayToBridge(encodeRelayToBridge(f))
  check(d._tag === "Ok", `the actor sent a bridge frame that does not decode: ${d._tag === "Invalid" ? d.detail : ""}`)
  return d._tag === "Ok" ? d.value : f
}
