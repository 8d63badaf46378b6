// Public API of the VM session actor: build a state, rebuild it after hibernation or eviction, and step it.
//
// The adapter (the VmSession Durable Object) turns every WebSocket and storage event into one SessionEvent, calls
// `step`, and runs the returned commands in order. Everything that decides (routing, policy, flow control, every reset
// rule of DESIGN.md invariant 2) happens inside `step`; the adapter never inspects a frame.
//
// Ownership: `step` may update `state` in place and returns it; the caller keeps only the returned state and never
// steps an older one. `step` is total (it never throws on any input: a throw is our bug), synchronous and
// deterministic: time and ids arrive inside events.
//
// Durability: `Persist` commands carry what storage must hold (coalescing allowed, order kept); a `Persist` always
// precedes the bridge `ack` it covers, and the Durable Object's output gate holds the ack until the write is durable.
// `SetAttachment` commands carry what each WebSocket's attachment must hold. After a restart the adapter calls
// `restore` with the stored PersistedState and the attachments of the WebSockets still open, then runs its commands.
import type { Policy } from "../link/types.ts"
import { type Limits } from "./limits.ts"
import { initialSession, restoreSession } from "./restore.ts"
import type { SessionState } from "./state.ts"
import { stepSession } from "./step.ts"
import type { BridgeLinkAttachment, ClientLinkAttachment, PersistedState, SessionCommand, SessionEvent } from "./types.ts"

export type { Limits } from "./limits.ts"
export { defaultLimits } from "./limits.ts"
export type { SessionState } from "./state.ts"
export type * from "./types.ts"

export interface StepResult {
  readonly state: SessionState
  readonly commands: ReadonlyArray<SessionCommand>
}

export interface SessionOptions {
  /** Session id (the Durable Object id): sent to clients in `welcome` and kept in PersistedState. */
  readonly session: string
  readonly policy: Policy
  readonly now: number
  /** Overrides of the default caps (tests, operators); see limits.ts for the budget they make up. */
  readonly limits?: Partial<Limits>
}

/** A fresh session: no bridge, no agent, no clients. Persist `persisted(state)` before the first step if desired. */
export const initialState = (opts: SessionOptions): SessionState => initialSession(opts)

/**
 * Rebuilds the actor after hibernation or eviction from storage plus the attachments of the WebSockets still open.
 * The commands it returns: a bridge `rewind` to the persisted agent position, `abort` of guest-bound messages that
 * were half streamed (their senders get notice "resend"), client `abort(seq, "resend")` for agent messages half sent,
 * credit given back, and fresh attachments. Links without an attachment are closed by the adapter before calling.
 */
export const restore = (
  persisted: PersistedState,
  links: { readonly bridge?: BridgeLinkAttachment; readonly clients: ReadonlyArray<ClientLinkAttachment> },
  now: number,
  opts?: { readonly limits?: Partial<Limits> },
): StepResult => restoreSession(persisted, links, now, opts?.limits)

/** Feeds one event; returns the new state and the commands to run, in order. */
export const step = (state: SessionState, event: SessionEvent): StepResult => stepSession(state, event)

/** What storage must hold right now (the same value the latest `Persist` command carried). */
export { persistedOf as persisted } from "./persist.ts"
