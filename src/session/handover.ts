// Live migration on the relay's side (docs/migration.md): the source's bridge hands the agent connection over when its
// QEMU has stopped and migrated (`handover`: where the source's agent bytes end), and the destination's bridge
// continues it (`hello.continues`). The agent connection is the guest's and did not end, so the relay keeps the epoch,
// the agent parser, caps and every console link; only the bridge link and its positions' origin change.
import type { BridgeToRelay } from "../link/types.ts"
import type { SessionState } from "./state.ts"
import { log, metric } from "./emit.ts"

type Hello = Extract<BridgeToRelay, { t: "hello" }>
type Handover = Extract<BridgeToRelay, { t: "handover" }>

/** Where the destination's positions start on the relay's stream: the answer's `agentBase` / `guestBase`. */
export interface Continuation {
  readonly hello: Hello
  readonly agentBase: number
  readonly guestBase: number
}

/**
 * The source's bridge says its agent bytes end at `end` and it wrote nothing it has not reported. Returns whether the
 * handover is taken (the caller then ends the source's link, keeping the agent "connected" for the grace period).
 */
export const takeHandover = (s: SessionState, f: Handover): boolean => {
  if (f.epoch !== s.epoch || !s.chardev) {
    metric(s, "vdrelay_migration_handovers_refused_total")
    log(s, "warn", "migration handover refused", { epoch: f.epoch, current: s.epoch, chardev: s.chardev })
    return false
  }
  // Bytes the source read before the stop that never reached us: the destination continues after them, so what was
  // in progress is lost and resynchronised (a gap), never torn.
  if (f.end !== s.stream.pos) log(s, "warn", "migration handover off the stream", { end: f.end, pos: s.stream.pos })
  // Persisted (with the agent position it ends at): a relay restart before the destination's hello still continues.
  s.handover = { epoch: s.epoch, end: f.end, wrote: s.guest.wrote, ...(f.torn === true ? { torn: true } : {}) }
  s.persistDirty = true
  metric(s, "vdrelay_migration_handovers_total")
  log(s, "info", "migration handover", { epoch: s.epoch, end: f.end, wrote: s.guest.wrote, torn: f.torn === true })
  s.out.push({ _tag: "CloseBridge", code: "going-away", detail: "handed over to the migration's destination" })
  return true
}

/**
 * A destination's `continues` hello, in the relay's positions, when a handover of this epoch is held; null otherwise
 * (then it is an ordinary hello: a new agent connection).
 */
export const continuation = (s: SessionState, h: Hello): Continuation | null => {
  const m = s.handover
  if (h.continues !== true || m === null || m === undefined || m.epoch !== s.epoch) return null
  // The guest's agent holds a prefix of a guest-bound message: continuing would tear it. An ordinary hello (a new agent
  // connection, reported to consoles); the destination hangs up its chardev so the agent starts clean.
  if (m.torn === true) {
    metric(s, "vdrelay_migration_torn_total")
    log(s, "warn", "migration not continued", { epoch: s.epoch, cause: "a guest-bound message was partly written at the stop" })
    s.handover = null
    s.persistDirty = true
    return null
  }
  s.handover = null
  s.persistDirty = true
  const agentBase = m.end
  // Not s.guest.wrote: after a relay restart the guest positions are unknown until a hello, the handover's are kept.
  const guestBase = m.wrote
  metric(s, "vdrelay_migration_continuations_total")
  log(s, "info", "migration continued", { epoch: s.epoch, agentBase, guestBase, bridge: h.bridge })
  const { continues: _, ...plain } = h
  return { hello: { ...plain, epoch: s.epoch, from: h.from + agentBase, wrote: h.wrote + guestBase }, agentBase, guestBase }
}
