// The session actor's in-memory state. Opaque to adapters; each part is owned by the module named beside it.
import type { MessageChunker } from "../protocol/chunker.ts"
import type { StreamParser } from "../protocol/stream-parser.ts"
import type { NoticeCode, Policy, PortLevel, RelayToClient, Role } from "../link/types.ts"
import type { Limits } from "./limits.ts"
import type { AgentResume, ClientId, SessionCommand } from "./types.ts"

/** One frame waiting in a client's queue (client-queue.ts). */
export interface OutItem {
  frame: RelayToClient
  /** Message data bytes in the frame (spends relay→client credit); 0 for control frames. */
  readonly bytes: number
  /** Agent message seq the frame belongs to (msg/more), if any. */
  readonly seq?: number
  /** Start position of the bridge data frame the bytes came from: the bridge is not acknowledged past it until sent. */
  readonly framePos?: number
  /** Agent-stream end position of the message, on its last frame. */
  msgEnd?: number
}

/** A client message being received (client-in.ts). */
export interface InMsg {
  readonly id: number
  readonly type: number
  readonly size: number
  received: number
  mode: "store" | "stream" | "drop"
  /** store: the whole payload. */
  buf: Uint8Array
  /** Half received before a restart: its size is unknown, its remaining frames are consumed up to `end`. */
  readonly orphan?: boolean
}

export interface ClientSide {
  readonly id: ClientId
  role: Role
  readonly maxRole: Role
  caps: ReadonlyArray<number>
  readonly joinedAt: number
  // outbound (client-queue.ts)
  items: OutItem[]
  head: number
  /** Unsent data bytes plus a fixed cost per unsent control frame. */
  queued: number
  credit: number
  /** Agent epoch and end position of the last agent message sent whole (replays at or below it are skipped). */
  lastEpoch: number
  lastPos: number
  partialSeq: number | null
  // inbound (client-in.ts)
  inMsg: InMsg | null
  /** Bytes of message data received and not yet credited back. */
  creditOwed: number
  /** Part of creditOwed that may be returned (forwarded or dropped). */
  creditFree: number
  /** A "mouse dropped" notice was sent and no mouse got through since (avoids one notice per motion). */
  mouseNoticed: boolean
  dirty: boolean
}

/** A whole client message handed to the bridge, waiting for `wrote` to pass its end (guest-out.ts). */
export interface InFlight {
  readonly end: number
  readonly client: ClientId | null
  readonly id: number
}

export interface Mouse {
  readonly x: number
  readonly y: number
  readonly buttons: number
  readonly display: number
}

/** The guest-bound side of the bridge link (guest-out.ts). */
export interface GuestOut {
  wpos: number
  wrote: number
  /** The port-1 message being streamed, if any (only one at a time: the agent reassembles per port). */
  stream: { readonly client: ClientId; readonly id: number; readonly chunker: MessageChunker; readonly start: number } | null
  inflight: InFlight[]
  mouseEnd: number | null
  mousePending: Mouse | null
}

/** A port-1 agent message being relayed (agent-route.ts). */
export interface AgentMsg {
  readonly type: number
  readonly size: number
  readonly seq: number
  /** Clients it goes to (shrinks when one leaves or loses the right to see it). */
  readonly to: Set<ClientId>
  /** Clients that got at least one frame of it queued. */
  readonly started: Set<ClientId>
  /** Collected whole (ANNOUNCE_CAPABILITIES, small): handled at its end. */
  collect: Uint8Array | null
  got: number
  readonly drop: string | null
  /** Whether the replay filter (restore) was applied at its first bytes. */
  placed: boolean
}

/** The agent stream from the bridge (agent-stream.ts). */
export interface AgentStream {
  pos: number
  parser: StreamParser
  /** Chunk framing tracked beside the parser so a mid-message position can be described (AgentResume). */
  chunkFill: number
  readonly chunkScratch: Uint8Array
  chunkPort: number
  chunkLeft: number
  /** Messages started per port (type, body bytes left). */
  ports: Map<number, { type: number; left: number }>
  mode: "parse" | "scan"
  tail: Uint8Array
  /** Candidate acknowledgement points, increasing, all above `acked`. */
  safe: Array<{ pos: number; resume: AgentResume | null }>
  acked: number
  ackedResume: AgentResume | null
  /** Start position of the data frame being processed. */
  framePos: number
  /** The bytes being pushed into the parser and their stream position (views it hands out are located with it). */
  cur: { readonly buf: Uint8Array; readonly pos: number } | null
  /** Stream position of the parser's position 0. */
  parserBase: number
  /** Set while the synthetic prefix of a restore is pushed: those messages are continued, not delivered. */
  resuming: boolean
  msgs: Map<number, AgentMsg>
}

export interface SessionState {
  readonly session: string
  readonly limits: Limits
  policy: Policy
  now: number
  counters: Record<string, number>
  /** Commands of the step in progress. */
  out: SessionCommand[]
  // agent and bridge (bridge.ts)
  bridge: { id: string; dirty: boolean } | null
  epoch: number
  chardev: boolean
  port: PortLevel
  /** Tunnel gone: until this time the agent is kept as connected (a blip), null otherwise. */
  graceUntil: number | null
  /** Whether clients were last told the agent is connected. */
  told: boolean
  rawCaps: ReadonlyArray<number> | null
  /** The agent announced (or answered) caps in this epoch: a later ANNOUNCE(request=1) means it restarted. */
  capsSeen: boolean
  stream: AgentStream
  guest: GuestOut
  /** Seqs below this are handed out; PersistedState.nextSeq is a lease above it. */
  nextSeq: number
  seqLease: number
  clients: Map<ClientId, ClientSide>
  controller: ClientId | null
  persistDirty: boolean
}

export type { NoticeCode }
