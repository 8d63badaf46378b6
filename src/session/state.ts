// The session actor's in-memory state. Opaque to adapters; each part is written only by the module named beside it
// (the others read it, or call that module). Two exceptions: restore.ts builds the whole state from storage before the
// first step, and the `dirty` / `persistDirty` marks are set by whoever changes what an attachment or storage holds.
import type { MessageChunker } from "../protocol/chunker.ts"
import type { StreamParser } from "../protocol/stream-parser.ts"
import type { NoticeCode, Policy, PortLevel, RelayToClient, Role } from "../link/types.ts"
import type { Limits } from "./limits.ts"
import type { AgentResume, ClientId, PersistedHandover, SessionCommand } from "./types.ts"

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
  /** An id this seat already sent whole (a resumed console's resend): absorbed, its answer repeated at its end. */
  readonly dup?: Answer
}

/** A client message's idempotence key, sent with its first `write` (the bridge writes a key at most once). */
export interface MessageKey {
  readonly origin: string
  readonly id: number
}

export interface ClientSide {
  readonly id: ClientId
  /** `hello.origin` ("" when the client sent none: its messages go to the bridge without a key). */
  readonly origin: string
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
  /**
   * Agent epoch and end position of the last agent message sent whole to this link (replays at or below it are skipped
   * for it: a restart that kept its socket lost nothing in it).
   */
  lastEpoch: number
  lastPos: number
  /**
   * The same for what it certainly has: confirmed with `got` (`hello.confirms`), else sent whole. A seat it leaves
   * (lost link, or a crash) resumes from here: frames in a socket that died may never have arrived.
   */
  hadEpoch: number
  hadPos: number
  partialSeq: number | null
  /** It confirms what it receives (`got`): agent bytes are acknowledged to the bridge only once it confirmed them. */
  readonly confirms: boolean
  /** Agent stream position of the bridge frame the message being sent to it began in (unset between messages). */
  sendingFrom: number | undefined
  /** Agent messages sent whole and not confirmed yet, oldest first (only when `confirms`). */
  unconfirmed: Unconfirmed[]
  // inbound (client-in.ts)
  inMsg: InMsg | null
  /** Bytes of message data received and not yet credited back. */
  creditOwed: number
  /** Part of creditOwed that may be returned (forwarded or dropped). */
  creditFree: number
  /** A "mouse dropped" notice was sent and no mouse got through since (avoids one notice per motion). */
  mouseNoticed: boolean
  dirty: boolean
  // resume (seats.ts; `answered`: answers.ts; `xfers`: xfers.ts)
  /** The seat's resume token ("" = not resumable). */
  readonly token: string
  /** Agent message seqs at or below this are never sent to it (`hello.lastSeq` of a resume). */
  floorSeq: number
  /** Answers to ids it sent whole (bounded, oldest first), so a resumed console's resends are not written twice. */
  answered: Map<number, Answer>
  /** FILE_XFER ids it started that the agent has not finished. */
  xfers: Set<number>
  /** Transfers the relay cancelled towards the agent while it was away: their data is refused, the client is told. */
  cancelled: Set<number>
  /**
   * Ids told `resend` and not sent again (answers.ts adds, client-in.ts removes): a later message arriving before them
   * would be written ahead of them, so it is told `resend` too (per-sender order). An `abort` of an owed id releases it.
   */
  owed: Set<number>
  /**
   * Resumed a seat restored from storage after a crash (its answers lost): the epoch its messages were sent in then. A
   * message it sends `again` in another epoch went to an agent connection that has ended: `dropped-by-disconnect`.
   */
  amnesicEpoch: number | null
}

/** What a message id was answered with: "pending" while handed to the bridge and not yet written. */
export type Answer = "pending" | "ack" | Exclude<NoticeCode, "resend">

/**
 * An agent message sent whole to a console that has not confirmed it: a restart replays the agent stream from at or
 * before `from` (the acknowledgement to the bridge stops there), and skips it for this console only once confirmed.
 */
export interface Unconfirmed {
  readonly seq: number
  readonly epoch: number
  /** Where the bridge frame its first byte came in starts; -1 when it is not replayable (confirms.ts `replayable`). */
  readonly from: number
  /** Where it ends. */
  readonly end: number
}

/** A seat whose link was lost, resumable until `until` (seats.ts; `control`: control.ts; `answered`: answers.ts). */
export interface Seat {
  readonly token: string
  /** Client id of the link that held it (in-flight entries still name it until the seat is resumed). */
  readonly client: ClientId
  /** It holds control: CLIENT_DISCONNECTED is pending and nobody else controls. */
  control: boolean
  readonly until: number
  readonly lastEpoch: number
  readonly lastPos: number
  /** Messages sent whole it had not confirmed: settled by the resuming link's `hello.lastSeq`. */
  readonly unconfirmed: ReadonlyArray<Unconfirmed>
  /** The agent message it was half sent (aborted towards the resumed link). */
  readonly partialSeq: number | null
  readonly answered: Map<number, Answer>
  readonly cancelled: Set<number>
  /** Restored from storage (answers lost): the epoch its messages were last sent in (ClientSide.amnesicEpoch). */
  readonly amnesicEpoch?: number | null
  /**
   * Its link was live when the relay stopped (a crash or an eviction closed it, not the console): what the agent says
   * before it is back is held for it (SessionState.replayHold), as its console will be back within the resume window.
   */
  readonly crashed?: boolean
}

/** A whole client message handed to the bridge, waiting for `wrote` to pass its end (guest-out.ts). */
export interface InFlight {
  readonly end: number
  readonly client: ClientId | null
  readonly id: number
  /**
   * Restored after a restart that lost the bridge link: the epoch it was handed to the bridge in (its position is not
   * known, `end` is +∞). The bridge's next hello answers it: `resend` in that epoch, else `dropped-by-disconnect`.
   */
  readonly epoch?: number
}

export interface Mouse {
  readonly x: number
  readonly y: number
  readonly buttons: number
  readonly display: number
}

/**
 * Guest-bound bytes held while the bridge tunnel is down within its grace (held.ts; hold.ts flushes them): written in order when it comes
 * back, reported `dropped-by-disconnect` if it does not.
 */
export interface HeldWrite {
  readonly port: number
  readonly bytes: Uint8Array
  readonly end: boolean
  /** The client whose message these bytes belong to; null for the relay's own messages. */
  readonly from: ClientId | null
  /** On the last bytes of a whole message: what `inflight` gets once they are written (id -1: the relay's own). */
  readonly settle: { readonly client: ClientId | null; readonly id: number } | null
  /** Client→relay credit withheld for these bytes (given back when they are written or dropped). */
  readonly credit: number
  /** On the first bytes of a client's message: its key, for the first `write` frame. */
  readonly key?: MessageKey
}

/** The guest-bound side of the bridge link (guest-out.ts; `held`, `heldBytes`, `stream.heldCredit`: held.ts). */
export interface GuestOut {
  wpos: number
  wrote: number
  /**
   * Whether `wpos`/`wrote` are this epoch's real positions. False after a restart that lost the bridge link (storage
   * does not keep them): the next hello's `wrote` is then taken as it is.
   */
  known: boolean
  /**
   * The port-1 message being streamed, if any (only one at a time: the agent reassembles per port). `heldCredit`:
   * bytes of it pushed while held whose credit is withheld (held.ts).
   */
  stream: { readonly client: ClientId; readonly id: number; readonly chunker: MessageChunker; readonly start: number; heldCredit: number; key: MessageKey | null } | null
  inflight: InFlight[]
  /** Held while the tunnel is down within its grace, in order (held.ts); empty while a bridge is attached. */
  held: HeldWrite[]
  /** Bytes of clients' messages in `held` (bounded by held.ts heldCap; the relay's own few are not counted). */
  heldBytes: number
  /** Ends of the MOUSE_STATE messages sent and not yet confirmed written (at most MOUSE_IN_FLIGHT; guest-out.ts). */
  mouseEnds: number[]
  mousePending: Mouse | null
}

/** A port-1 agent message being relayed (agent-route.ts; taken back from clients by agent-msgs.ts). */
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
  /** FILE_XFER_STATUS: its first 8 bytes (id, result), kept to see transfers finish. */
  head: Uint8Array | null
  got: number
  readonly drop: string | null
  /** Whether the replay filter (restore) was applied at its first bytes. */
  placed: boolean
}

/** The agent stream from the bridge (agent-stream.ts; `msgs`: agent-route.ts and agent-msgs.ts). */
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
  /** The live policy (policy.ts). */
  policy: Policy
  now: number
  counters: Record<string, number>
  /** Commands of the step in progress. */
  out: SessionCommand[]
  // agent and bridge (tunnel.ts; `port` also agent-announce.ts: the agent's announce proves its port open)
  bridge: { id: string; dirty: boolean } | null
  epoch: number
  chardev: boolean
  port: PortLevel
  /** Tunnel gone: until this time the agent is kept as connected (a blip), null otherwise. */
  graceUntil: number | null
  /**
   * After a restore the relay asked the bridge to `rewind` to this position: data frames beyond it were sent before
   * the bridge saw the rewind and are stale (dropped), not a gap. Cleared by the first frame at or before it.
   */
  rewindTo: number | null
  /**
   * After a crash: a seat whose link the crash closed will be back and would miss what the agent says meanwhile, and a
   * departed seat may lack an agent message the crash lost in its socket (confirms.ts), so agent bytes are not taken
   * from the bridge until such seats resume or expire (the timer wakes the session then); then the bridge is rewound
   * and the replay reaches them too (otherwise a bridge back before the console replays to nobody).
   */
  replayHold: boolean
  /** A live migration's source handed the agent connection over at `end` of `epoch` (handover.ts); absent: none. */
  handover?: PersistedHandover | null
  /** Whether clients were last told the agent is connected (agent-view.ts, as are `rawCaps` and `capsSeen`). */
  told: boolean
  rawCaps: ReadonlyArray<number> | null
  /** The agent announced (or answered) caps in this epoch: a later ANNOUNCE(request=1) means it restarted. */
  capsSeen: boolean
  stream: AgentStream
  guest: GuestOut
  /** Seqs below this are handed out; PersistedState.nextSeq is a lease above it (seq.ts). */
  nextSeq: number
  seqLease: number
  /** Members and the controller (clients.ts). */
  clients: Map<ClientId, ClientSide>
  controller: ClientId | null
  /** Seats of lost links, resumable until their `until`, by token (seats.ts). */
  seats: Map<string, Seat>
  /** The TimerFired time last asked for (SetTimer), null if none (timer.ts). */
  timerAt: number | null
  persistDirty: boolean
}

export type { NoticeCode }
