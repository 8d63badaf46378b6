// The session actor's contract: events in (past tense), commands out (imperative). `step(state, event)` is total,
// synchronous and deterministic: time and ids arrive inside events.
import type { BridgeToRelay, ClientToRelay, LinkErrorCode, Policy, RelayToBridge, RelayToClient, Role } from "../link/types.ts"

export type ClientId = string

/** Why a link ended: drives which resets apply (DESIGN.md invariant 2). */
export type LeaveCause = "closed" | "error" | "protocol" | "replaced" | "slow-consumer" | "evicted"

export type SessionEvent =
  /** A bridge tunnel completed its hello. Any previous bridge link is replaced. */
  | { readonly _tag: "BridgeAttached"; readonly now: number; readonly hello: Extract<BridgeToRelay, { t: "hello" }> }
  /** The bridge tunnel is gone (WebSocket closed or errored). The agent may still be there, behind the bridge. */
  | { readonly _tag: "BridgeDetached"; readonly now: number; readonly cause: LeaveCause }
  /** A decoded frame from the bridge (not hello). */
  | { readonly _tag: "BridgeFrameReceived"; readonly now: number; readonly frame: BridgeToRelay }
  /** A client link completed its hello; the Worker has already checked the token's role allows `hello.role`. */
  | {
      readonly _tag: "ClientJoined"
      readonly now: number
      readonly client: ClientId
      /** The highest role the client's token allows. */
      readonly maxRole: Role
      readonly hello: Extract<ClientToRelay, { t: "hello" }>
    }
  | { readonly _tag: "ClientLeft"; readonly now: number; readonly client: ClientId; readonly cause: LeaveCause }
  | { readonly _tag: "ClientFrameReceived"; readonly now: number; readonly client: ClientId; readonly frame: ClientToRelay }
  /** A link sent bytes that do not decode: the actor decides what to close. */
  | { readonly _tag: "FrameRejected"; readonly now: number; readonly from: { readonly client: ClientId } | "bridge"; readonly detail: string }
  | { readonly _tag: "TimerFired"; readonly now: number }
  | { readonly _tag: "PolicyChanged"; readonly now: number; readonly policy: Policy }

export type SessionCommand =
  | { readonly _tag: "SendToClient"; readonly client: ClientId; readonly frame: RelayToClient }
  | { readonly _tag: "SendToBridge"; readonly frame: RelayToBridge }
  | { readonly _tag: "CloseClient"; readonly client: ClientId; readonly code: LinkErrorCode; readonly detail: string }
  | { readonly _tag: "CloseBridge"; readonly code: LinkErrorCode; readonly detail: string }
  /** Durable state changed: the adapter writes it to storage (coalescing is allowed, ordering must be kept). */
  | { readonly _tag: "Persist"; readonly state: PersistedState }
  /** Ask for a TimerFired at `at` (ms); a later SetTimer replaces an earlier one. */
  | { readonly _tag: "SetTimer"; readonly at: number }
  | { readonly _tag: "Log"; readonly level: "info" | "warn" | "error"; readonly event: string; readonly fields: Readonly<Record<string, string | number | boolean>> }
  | { readonly _tag: "Metric"; readonly name: string; readonly by: number; readonly labels?: Readonly<Record<string, string>> }

/** What must survive a Durable Object restart: rebuilt by `restore(persisted)`. Small (well under 128 KiB). */
export interface PersistedState {
  readonly version: 1
  readonly policy: Policy
  /** Raw agent caps as announced (before policy edits), null if none seen. */
  readonly agentCaps: ReadonlyArray<number> | null
  /** Agent stream: epoch and the message-boundary position consumed (acknowledged to the bridge). */
  readonly epoch: number
  readonly agentAck: number
  /** Next agent→client message seq (so seqs stay increasing across restarts). */
  readonly nextSeq: number
  /** Counters for /status. */
  readonly counters: Readonly<Record<string, number>>
}
