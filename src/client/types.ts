// Public types of the client SDK: connect options, session events and the values they carry.
import type { NoticeCode, Policy, Role } from "../link/types.ts"
import type { ReconnectOptions, TokenSource, WebSocketConstructor } from "./connection.ts"
import type { ClientError } from "./errors.ts"
import type { RawAgentMessage } from "./inbox.ts"

export type { NoticeCode, Policy, Role } from "../link/types.ts"
export type { RawAgentMessage } from "./inbox.ts"

export interface ConnectOptions {
  /** The relay's console endpoint, ws(s):// or http(s)://, e.g. `wss://relay.example.com/v1/connect`. */
  readonly url: string
  /** A console token (controller or viewer), or a function returning a fresh one for each (re)connection. */
  readonly token: TokenSource
  /** The role to ask for (default "controller"; the relay grants at most what the token allows). */
  readonly role?: Role
  /** Shown in relay logs (default "vdrelay-client"). */
  readonly clientName?: string
  /** VD_AGENT caps words this console announces (default: `defaultClientCaps`). */
  readonly caps?: ReadonlyArray<number>
  /** Reconnect with backoff after a drop (default on); `false` ends the session at the first drop. */
  readonly reconnect?: ReconnectOptions | false
  /** Ping interval, ms; a link silent for two intervals is dropped and reconnected (default 20 000; 0 disables). */
  readonly heartbeatMs?: number
  /** Largest agent message accepted whole, bytes (default 128 MiB); larger ones are dropped and reported. */
  readonly maxMessageBytes?: number
  /** Relay→client credit kept outstanding, bytes (default 8 MiB). */
  readonly receiveWindowBytes?: number
  /** Largest fragment per WebSocket frame, bytes (default 256 KiB). */
  readonly maxFragmentBytes?: number
  /** File bytes a transfer keeps in flight towards the relay (default 4 MiB: ~200× SPICE's 10 × 2 KiB window). */
  readonly fileWindowBytes?: number
  /** Announced to the agent as MAX_CLIPBOARD (default: the relay policy's maxClipboardBytes). */
  readonly maxClipboardBytes?: number
  /** How long to wait for the agent's REPLY to a monitors config, ms (default 15 000). */
  readonly replyTimeoutMs?: number
  /** A WebSocket implementation (default: the global one; Node ≥ 22 and browsers have it). */
  readonly WebSocket?: WebSocketConstructor
}

/** The state of the console's link to the relay (not of the relay's session actor). */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed"

export interface AgentInfo {
  readonly connected: boolean
  /** Agent caps words as the relay forwards them (after policy edits); null until announced. */
  readonly caps: ReadonlyArray<number> | null
}

export interface ClipboardData {
  readonly selection: number
  /** VD_AGENT_CLIPBOARD_* type (1 UTF8_TEXT, 2 IMAGE_PNG, …); NONE (0) or empty data means "not available". */
  readonly type: number
  readonly data: Uint8Array
  /** The data as text when it is UTF8_TEXT (guest line endings already turned into "\n"), decoded when first read. */
  readonly text: string | undefined
}

export type FileStatus = "waiting" | "sending" | "done" | "cancelled" | "failed"

export interface FileProgress {
  readonly id: number
  readonly name: string
  readonly size: number
  /** File bytes the relay has taken whole towards the agent. */
  readonly sent: number
}

export interface FileStatusEvent extends FileProgress {
  readonly status: FileStatus
  readonly error?: ClientError
}

export interface Notice {
  readonly code: NoticeCode
  readonly id?: number
  readonly type?: number
  readonly detail: string
}

export interface CloseInfo {
  readonly code: number
  readonly reason: string
  /** Whether the session is trying again (state "reconnecting") or has ended (state "closed"). */
  readonly reconnecting: boolean
  /** Why the session ended (when `reconnecting` is false), e.g. reason "auth": get a new token and connect again. */
  readonly error?: ClientError
}

export interface SessionEvents {
  readonly state: ConnectionState
  readonly agent: AgentInfo
  readonly role: Role
  readonly policy: Policy
  readonly "clipboard-grab": { readonly selection: number; readonly types: ReadonlyArray<number> }
  readonly "clipboard-release": { readonly selection: number }
  readonly clipboard: ClipboardData
  readonly "monitors-reply": { readonly success: boolean }
  readonly "file-progress": FileProgress
  readonly "file-status": FileStatusEvent
  readonly notice: Notice
  readonly error: ClientError
  readonly close: CloseInfo
  /** Every whole agent message received, including those the SDK handled itself. */
  readonly message: RawAgentMessage
}

export interface MouseState {
  readonly x: number
  readonly y: number
  /** VD_AGENT_*_MASK bits (MouseButton in vdrelay/protocol); default none. */
  readonly buttons?: number
  readonly display?: number
}
