// The session actor's contract: events in (past tense), commands out (imperative). `step(state, event)` is total,
// synchronous and deterministic: time and ids arrive inside events.
import type { BridgeToRelay, ClientToRelay, LinkErrorCode, Policy, PortLevel, RelayToBridge, RelayToClient, Role } from "../link/types.ts"

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
      /**
       * A fresh unguessable token for this seat (the actor has no randomness): ≥ 128 random bits, e.g. 32 hex chars
       * from `crypto.getRandomValues`, ≤ 256 chars. Sent to the client in `welcome.resume`; `hello.resume` with it
       * resumes the seat once (single use) within `limits.clientGraceMs` of the link's loss. Absent or "": the seat
       * cannot be resumed (welcome.resume is then "").
       */
      readonly resumeToken?: string
    }
  /**
   * A client link ended. `cause` decides what the guest sees: "error", "evicted" and "slow-consumer" (a network or
   * relay-side loss) keep the seat resumable for `limits.clientGraceMs` and hold a departed controller's
   * CLIENT_DISCONNECTED for that long; "closed" (the console closed its link), "protocol" and "replaced" end the seat
   * at once.
   */
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
  /**
   * Replace the attachment of one WebSocket (`serializeAttachment`), so the link can be rebuilt by `restore` after
   * hibernation or eviction. At most one per link per step, emitted after the frames of that step; ≤ 2 KiB serialized.
   */
  | { readonly _tag: "SetAttachment"; readonly link: { readonly client: ClientId } | "bridge"; readonly data: LinkAttachment }
  /** Ask for a TimerFired at `at` (ms); a later SetTimer replaces an earlier one. */
  | { readonly _tag: "SetTimer"; readonly at: number }
  | { readonly _tag: "Log"; readonly level: "info" | "warn" | "error"; readonly event: string; readonly fields: Readonly<Record<string, string | number | boolean>> }
  | { readonly _tag: "Metric"; readonly name: string; readonly by: number; readonly labels?: Readonly<Record<string, string>> }

/** What must survive a Durable Object restart: rebuilt by `restore(persisted)`. Small (well under 128 KiB). */
export interface PersistedState {
  readonly version: 1
  /** The session id given to `initialState` (sent to clients in `welcome`). */
  readonly session: string
  readonly policy: Policy
  /** Raw agent caps as announced (before policy edits), null if none seen. */
  readonly agentCaps: ReadonlyArray<number> | null
  /** Agent stream: epoch and the message-boundary position consumed (acknowledged to the bridge). */
  readonly epoch: number
  readonly agentAck: number
  /**
   * Next agent→client message seq at `agentAck` (so seqs stay increasing across restarts, and agent bytes replayed
   * from `agentAck` get the same seqs again: clients skip seqs they already have).
   */
  readonly nextSeq: number
  /**
   * Parser state at `agentAck` when that position lies inside a message (messages larger than the agent window are
   * acknowledged piecewise); null at a message boundary. See src/session/agent-stream.ts.
   */
  readonly agentResume: AgentResume | null
  /** Counters for /status. */
  readonly counters: Readonly<Record<string, number>>
  /**
   * Resumable client seats (at most `limits.resumeSeats`, the controller's first): those with a link open when this
   * was written (`until` null: resumable for a grace after a restart that lost their link) and those already departed.
   * Absent in states written before resume existed. Holds resume tokens: storage is the VM's own.
   */
  readonly seats?: ReadonlyArray<PersistedSeat>
  /**
   * A live migration's source handed the agent connection over and the destination has not continued it yet
   * (src/session/handover.ts): kept so a relay restart in between still continues the connection. Absent: none.
   */
  readonly handover?: PersistedHandover
}

/** Where the source's agent bytes end (`end`) and its confirmed guest-bound position (`wrote`) in `epoch`. */
export interface PersistedHandover {
  readonly epoch: number
  readonly end: number
  readonly wrote: number
  readonly torn?: boolean
}

/** One resumable client seat as persisted (see PersistedState.seats). */
export interface PersistedSeat {
  readonly token: string
  /** Client id of the link that last held it. */
  readonly client: ClientId
  /** It holds control: the agent has not been told CLIENT_DISCONNECTED for it. */
  readonly control: boolean
  /** When its resume window ends (ms); null while a link held it. */
  readonly until: number | null
  readonly lastEpoch: number
  readonly lastPos: number
  /** Agent messages sent whole to it and not confirmed (ClientSide.unconfirmed); absent: none. */
  readonly unconfirmed?: ReadonlyArray<PersistedUnconfirmed>
}

/** ClientSide.unconfirmed as persisted: [seq, epoch, from, end]. */
export type PersistedUnconfirmed = readonly [number, number, number, number]

/**
 * Where the agent-stream parser stood at an acknowledged position that is not a message boundary: enough to resume
 * parsing exactly there (messages larger than the agent window are acknowledged piecewise), or `scan` when the relay
 * was hunting for the next message header after garbage.
 */
export type AgentResume =
  | {
      readonly _tag: "Mid"
      /** The chunk being read at that position (null between chunks). */
      readonly chunk: { readonly port: number; readonly left: number } | null
      /** Ports holding part of a message: its type and the body bytes still to come (the rest is discarded). */
      readonly ports: ReadonlyArray<{ readonly port: number; readonly type: number; readonly left: number }>
    }
  | { readonly _tag: "Scan" }

/** Attachment of a client WebSocket: what `restore` needs to rebuild that client. */
export interface ClientLinkAttachment {
  readonly kind: "client"
  readonly client: ClientId
  readonly role: Role
  readonly maxRole: Role
  /** The client's VD_AGENT caps (hello, then its latest ANNOUNCE_CAPABILITIES). */
  readonly caps: ReadonlyArray<number>
  readonly joinedAt: number
  /**
   * Client message half received when the attachment was written: lost on restart, so its sender is told "resend"
   * unless it was already told why it was dropped (`told`); its remaining frames are absorbed either way.
   */
  readonly partialIn: { readonly id: number; readonly told: boolean } | null
  /** Client→relay credit bytes the client has spent and not had back (returned on restart). */
  readonly creditOwed: number
  /** Ids of this client's whole messages handed to the bridge and not yet acknowledged (acked after restart). */
  readonly inflight: ReadonlyArray<number>
  /**
   * More in-flight ids, as inclusive runs [first, last] of consecutive ids, when listing them one by one would not fit
   * the attachment (the SDK numbers its messages 1, 2, 3…, so a long backlog is one run). Absent when `inflight` has all.
   */
  readonly inflightRuns?: ReadonlyArray<readonly [number, number]>
  /** Agent epoch and stream end position of the last agent message sent whole: replays up to it are skipped. */
  readonly lastEpoch: number
  readonly lastPos: number
  /** Agent message seq partly sent to this client (aborted with "resend" on restart), or null. */
  readonly partialSeq: number | null
  /** It confirms what it receives (`hello.confirms`); absent: false. */
  readonly confirms?: boolean
  /** ClientSide.hadEpoch, hadPos when they differ from lastEpoch, lastPos. */
  readonly had?: readonly [number, number]
  /** Agent messages sent whole and not confirmed (ClientSide.unconfirmed); absent: none. */
  readonly unconfirmed?: ReadonlyArray<PersistedUnconfirmed>
  /** The seat's resume token (ClientJoined.resumeToken); absent in attachments written before resume existed. */
  readonly resumeToken?: string
  /** `hello.origin`, the idempotence origin of its messages (absent: none). */
  readonly origin?: string
  /**
   * The agent epoch its in-flight messages were handed to the bridge in. After a restart that lost the bridge link they
   * are told `resend` only if the bridge comes back in that epoch (it writes a keyed message once, however often it
   * is sent); in another one `dropped-by-disconnect`: never written to a new agent connection. Absent: the epoch
   * persisted with the state.
   */
  readonly inflightEpoch?: number
  /** The smallest ids it was told `resend` and has not sent again (ClientSide.owed), so a restart keeps its order. */
  readonly owed?: ReadonlyArray<number>
  /**
   * Relay→client credit the client granted and the relay has not used yet (may be slightly negative: one fragment of
   * overdraw), so a restart neither stalls nor overruns the client. Absent in older attachments (initial credit then).
   */
  readonly credit?: number
}

/** Attachment of the bridge WebSocket. */
export interface BridgeLinkAttachment {
  readonly kind: "bridge"
  readonly bridge: string
  readonly epoch: number
  readonly chardev: boolean
  readonly port: PortLevel
  /** Next guest-bound write position in `epoch`. */
  readonly wpos: number
  /** Guest-bound position the bridge reported written. */
  readonly wrote: number
  /** The port-1 message half streamed (aborted on restart; its sender is told "resend"), or null. */
  readonly partialOut: { readonly client: ClientId; readonly id: number } | null
}

export type LinkAttachment = ClientLinkAttachment | BridgeLinkAttachment
