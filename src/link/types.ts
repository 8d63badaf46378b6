// The two WebSocket wire protocols, as types: the client link (console ⇄ relay) and the bridge link (host bridge ⇄
// relay). Every frame is one msgpack map (msgpackr, useRecords: false) with a `t` discriminant; bulk bytes are msgpack
// bin (Uint8Array), never base64. docs/protocol.md documents them byte by byte.

export const LINK_VERSION = 1

/** Largest WebSocket message either link accepts, bytes; a bigger one closes the link with 1009 before it is parsed. */
export const MAX_FRAME_BYTES = 1024 * 1024
/** Largest `data`/`bytes` field of one frame: what is left of MAX_FRAME_BYTES after the envelope's few dozen bytes. */
export const MAX_FRAME_DATA_BYTES = MAX_FRAME_BYTES - 1024

/** Longest `origin` (client `hello`, bridge `write`): the SDK draws 128 random bits, written as 32 hex digits. */
export const MAX_ORIGIN_LENGTH = 64

export type Role = "controller" | "viewer"
export type TokenRole = Role | "bridge" | "operator"

/** Per-VM policy, settable live by an operator (PUT /v1/vms/{vm}/policy). */
export interface Policy {
  readonly copyPaste: boolean
  readonly fileTransfer: boolean
  /** Largest clipboard payload (CLIPBOARD message) relayed in either direction, bytes. */
  readonly maxClipboardBytes: number
  /** Largest agent message relayed in either direction (payload bytes). */
  readonly maxMessageBytes: number
  /** Whether viewers receive clipboard contents (CLIPBOARD, GRAB, REQUEST, RELEASE). */
  readonly viewersSeeClipboard: boolean
}

export const defaultPolicy: Policy = {
  copyPaste: true,
  fileTransfer: true,
  maxClipboardBytes: 100 * 1024 * 1024,
  maxMessageBytes: 128 * 1024 * 1024,
  viewersSeeClipboard: false,
}

/** Why a message was dropped: every drop is told to its sender with one of these. */
export type NoticeCode =
  | "dropped-by-policy"
  | "dropped-by-disconnect"
  | "dropped-by-role"
  | "too-large"
  | "invalid-message"
  | "agent-not-connected"
  | "role-changed"
  | "slow-consumer"
  /** The relay lost a partial message through no fault of the sender (restart/hibernation): send it again whole. */
  | "resend"

/** Link errors: each maps to one WebSocket close code (see src/link/close-codes.ts). */
export type LinkErrorCode =
  | "protocol" // 1002: malformed frame, bad version, frame out of order
  | "policy" // 1008: auth, role, origin, rate limit
  | "too-big" // 1009: frame or message over its cap
  | "internal" // 1011: our bug
  | "replaced" // 4000: another bridge took the VM; another controller took over and we close
  | "slow-consumer" // 4001: a viewer fell behind its queue cap
  | "going-away" // 1001
  | "auth" // 4401: the link's token expired or was revoked, a refreshed token or a bridge's proof of its host key refused

export interface AgentState {
  readonly connected: boolean
  /** Agent caps after policy edits (null until the agent announced them). */
  readonly caps: ReadonlyArray<number> | null
}

// ---------------------------------------------------------------- client link

export type ClientToRelay =
  | {
      readonly t: "hello"
      readonly v: number
      readonly client: string
      readonly role: Role
      /** The client's own VD_AGENT caps (what it would announce to the agent). */
      readonly caps: ReadonlyArray<number>
      /** Resume token from a previous welcome: keep the seat (controller) and skip messages already seen. */
      readonly resume?: string
      /** Highest agent message seq fully received before the drop. */
      readonly lastSeq?: number
      /**
       * The idempotence origin of this console's messages: random (≥ 64 bits), drawn once per SDK session object and
       * kept across its reconnects. With the message `id` it names one message for the bridge, which writes a named
       * message to the guest at most once however often it is resent (docs/architecture.md, "Exactly once").
       */
      readonly origin?: string
      /**
       * The console confirms the agent messages it receives whole (`got`). The relay then lets the bridge drop agent
       * bytes, and a restart skips a replayed message, only once every console it was sent to confirmed it: a message
       * lost with the sockets in a relay crash is sent again instead of being taken as delivered.
       */
      readonly confirms?: boolean
    }
  /**
   * First (or only) fragment of a whole agent message: `size` is the full payload size, `data` a prefix of it.
   * `again`: this id was sent before (a resend); after a relay restart that lost its answer it is not written to an
   * agent connection other than the one it was first sent to.
   */
  | { readonly t: "msg"; readonly id: number; readonly type: number; readonly size: number; readonly data: Uint8Array; readonly end: boolean; readonly again?: boolean }
  | { readonly t: "more"; readonly id: number; readonly data: Uint8Array; readonly end: boolean }
  /** The client gives a message up before its end; nothing of it reaches the agent. */
  | { readonly t: "abort"; readonly id: number }
  /** Absolute pointer; coalesced into MOUSE_STATE on the server port (latest wins). */
  | { readonly t: "mouse"; readonly x: number; readonly y: number; readonly buttons: number; readonly display: number }
  /** Grants relay→client credit in bytes of message data. */
  | { readonly t: "credit"; readonly bytes: number }
  /** Every agent message up to `seq` arrived whole (only after `welcome.confirms`): see `hello.confirms`. */
  | { readonly t: "got"; readonly seq: number }
  /** Ask to become the controller (allowed when the token's role is controller). */
  | { readonly t: "control" }
  | { readonly t: "ping"; readonly n: number }

export type RelayToClient =
  | {
      readonly t: "welcome"
      readonly v: number
      readonly session: string
      readonly role: Role
      readonly agent: AgentState
      readonly policy: Policy
      /** Client→relay credit in bytes of message data. */
      readonly credit: number
      /** This link's resume token (single use): offer it in `hello.resume` after a drop. "" when not resumable. */
      readonly resume: string
      /**
       * The `hello.resume` token was honoured: the seat (and, if `role` says so, control) was kept and the agent was
       * not told CLIENT_DISCONNECTED for it; absent or false: a new seat.
       */
      readonly resumed?: boolean
      /** The relay takes `got` confirmations from this link (it said `hello.confirms`). */
      readonly confirms?: boolean
    }
  | { readonly t: "agent"; readonly connected: boolean; readonly caps: ReadonlyArray<number> | null }
  /** First (or only) fragment of an agent message. `seq` is unique and increasing per VM session. */
  | { readonly t: "msg"; readonly seq: number; readonly type: number; readonly size: number; readonly data: Uint8Array; readonly end: boolean }
  | { readonly t: "more"; readonly seq: number; readonly data: Uint8Array; readonly end: boolean }
  /** The message `seq` will never be completed (its sender vanished): drop what was received of it. */
  | { readonly t: "abort"; readonly seq: number; readonly reason: NoticeCode }
  /** Client message `id` was handed whole to the bridge for the agent. */
  | { readonly t: "ack"; readonly id: number }
  /** Client→relay credit returned (bytes). */
  | { readonly t: "credit"; readonly bytes: number }
  | { readonly t: "notice"; readonly code: NoticeCode; readonly id?: number; readonly type?: number; readonly detail: string }
  | { readonly t: "role"; readonly role: Role }
  | { readonly t: "pong"; readonly n: number }
  /** Sent just before the relay closes the link. */
  | { readonly t: "error"; readonly code: LinkErrorCode; readonly detail: string }

// ---------------------------------------------------------------- bridge link

export type PortLevel = "open" | "closed" | "unknown"

export type BridgeToRelay =
  | {
      readonly t: "hello"
      readonly v: number
      readonly bridge: string
      /** Chardev connection generation; a new epoch is a new agent connection (all stream positions restart at 0). */
      readonly epoch: number
      /** Whether the chardev socket is connected right now. */
      readonly chardev: boolean
      /** Oldest agent byte position the bridge still retains (it can replay from here). */
      readonly from: number
      /** Guest-bound position the bridge has fully written to the chardev in this epoch. */
      readonly wrote: number
      readonly port: PortLevel
      /**
       * Live migration (docs/migration.md): this bridge's QEMU is the destination of a migration that has just resumed
       * the guest, and its chardev connection continues the agent connection the relay had from the source's bridge.
       * The relay answers with `agentBase`/`guestBase` when it holds the source's handover, else it is an ordinary hello.
       */
      readonly continues?: boolean
    }
  /**
   * Live migration, source side: the VM migrated away (QEMU stopped, migration completed). Every agent byte this bridge
   * read from the source chardev before the stop ends at `end` of `epoch` and was sent; every guest-bound byte it wrote
   * was reported in `wrote` before this frame; nothing more will be written. The relay keeps the agent connection for
   * the destination's `continues` hello and closes this link.
   */
  | {
      readonly t: "handover"
      readonly epoch: number
      readonly end: number
      /**
       * A guest-bound message was partly written when QEMU stopped: the guest's agent holds a prefix the destination
       * cannot continue, so the relay does not continue the connection (the destination hangs up and starts anew).
       */
      readonly torn?: boolean
    }
  /** Agent bytes (raw chardev stream) starting at stream position `pos` of `epoch`. */
  | { readonly t: "data"; readonly epoch: number; readonly pos: number; readonly bytes: Uint8Array }
  /** The chardev connected (a new epoch begins) or was lost. */
  | { readonly t: "chardev"; readonly epoch: number; readonly up: boolean }
  /** Guest port level from QMP VSERPORT_CHANGE / query-chardev. */
  | { readonly t: "port"; readonly epoch: number; readonly open: boolean }
  /**
   * Guest-bound bytes of `epoch` written whole to the chardev up to `pos` (acknowledgement; frees relay window).
   * `server`, when present and above `pos`: every server-port (2) message ending at or below it is written whole too.
   * Ports are interleaved in the chardev writes, so a MOUSE_STATE is written long before a big client-port message
   * queued ahead of it, and `pos` cannot pass the mouse until that message is written.
   */
  | { readonly t: "wrote"; readonly epoch: number; readonly pos: number; readonly server?: number }
  | { readonly t: "ping"; readonly n: number }

export type RelayToBridge =
  | {
      readonly t: "welcome"
      readonly v: number
      /** The epoch the relay resumes in, and where the bridge must (re)send agent bytes from. */
      readonly epoch: number
      readonly ack: number
      /** Agent bytes the bridge may have unacknowledged in flight. */
      readonly window: number
      /**
       * Answer to a `continues` hello (live migration): the bridge's positions of its own chardev connection count from
       * these stream positions of the relay's `epoch` (agent bytes, guest-bound bytes); both or neither.
       */
      readonly agentBase?: number
      readonly guestBase?: number
    }
  /** Agent bytes of `epoch` consumed up to `pos`: the bridge may forget them, and read more within the window. */
  | { readonly t: "ack"; readonly epoch: number; readonly pos: number }
  /**
   * Chunked guest-bound bytes at position `pos` of `epoch` for one port; `end` completes a message. The first write
   * of a client's message names it: `origin` (the client's `hello.origin`) and `id` (its message id), both or neither.
   * The bridge writes a named message whole at most once per process lifetime; a repeat is discarded but counted as
   * written (its `wrote` passes), so the relay acknowledges it.
   */
  | {
      readonly t: "write"
      readonly epoch: number
      readonly pos: number
      readonly port: number
      readonly data: Uint8Array
      readonly end: boolean
      readonly origin?: string
      readonly id?: number
    }
  /** Discard the partially buffered message of `port`: it will never be completed. */
  | { readonly t: "abort"; readonly epoch: number; readonly pos: number; readonly port: number }
  /** Send agent bytes again from `pos` (the relay lost in-memory parser state, e.g. after hibernation). */
  | { readonly t: "rewind"; readonly epoch: number; readonly pos: number }
  | { readonly t: "pong"; readonly n: number }
  | { readonly t: "error"; readonly code: LinkErrorCode; readonly detail: string }
