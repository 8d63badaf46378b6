// The decoded form of every VDAgentMessage payload (spec §2), as one tagged union keyed by the MessageType names.
import { MessageType } from "./constants.ts"

/** VDAgentMouseState (13 bytes). */
export interface MouseState {
  readonly _tag: "MouseState"
  readonly x: number
  readonly y: number
  /** MouseButton bits (L = 1 << 1 …). */
  readonly buttons: number
  readonly displayId: number
}

/** VDAgentMonConfig: note that height comes before width on the wire. */
export interface MonitorConfig {
  readonly height: number
  readonly width: number
  readonly depth: number
  readonly x: number
  readonly y: number
}

/** VDAgentMonitorMM: physical size in millimetres (u16 height, u16 width). */
export interface MonitorMm {
  readonly height: number
  readonly width: number
}

/** VDAgentMonitorsConfig; `physicalSize` is present exactly when flags has PHYSICAL_SIZE. */
export interface MonitorsConfig {
  readonly _tag: "MonitorsConfig"
  readonly flags: number
  readonly monitors: ReadonlyArray<MonitorConfig>
  readonly physicalSize?: ReadonlyArray<MonitorMm>
}

/** VDAgentReply: `type` is the message type acknowledged, `error` a ReplyError. */
export interface Reply {
  readonly _tag: "Reply"
  readonly type: number
  readonly error: number
}

/** VDAgentClipboard: [selection prefix] u32 type, then the data (a view of the payload when decoded). */
export interface Clipboard {
  readonly _tag: "Clipboard"
  /** Selection (0 = CLIPBOARD); only CLIPBOARD can be expressed when the layout has no selection prefix. */
  readonly selection: number
  readonly dataType: number
  readonly data: Uint8Array
}

export interface DisplayConfig {
  readonly _tag: "DisplayConfig"
  readonly flags: number
  readonly depth: number
}

export interface AnnounceCapabilities {
  readonly _tag: "AnnounceCapabilities"
  /** The sender asks the peer to answer with its own caps. */
  readonly request: boolean
  readonly caps: ReadonlyArray<number>
}

/** VDAgentClipboardGrab: [selection prefix][serial] u32 types[]. */
export interface ClipboardGrab {
  readonly _tag: "ClipboardGrab"
  readonly selection: number
  /** Present exactly when the layout has the grab serial (CLIPBOARD_GRAB_SERIAL). */
  readonly serial?: number
  readonly types: ReadonlyArray<number>
}

export interface ClipboardRequest {
  readonly _tag: "ClipboardRequest"
  readonly selection: number
  readonly dataType: number
}

export interface ClipboardRelease {
  readonly _tag: "ClipboardRelease"
  readonly selection: number
}

/** VDAgentFileXferStartMessage: u32 id, then the NUL-terminated `[vdagent-file-xfer]` key file (spec §7 item 8). */
export interface FileXferStart {
  readonly _tag: "FileXferStart"
  readonly id: number
  readonly name: string
  readonly size: number
  readonly fileXferNr?: number
  readonly fileXferTotal?: number
}

/** The optional detail after a status: ERROR → error type + code; NOT_ENOUGH_SPACE → free bytes. */
export type FileXferStatusDetail =
  | { readonly _tag: "Error"; readonly errorType: number; readonly errorCode: number }
  | { readonly _tag: "NotEnoughSpace"; readonly freeSpace: number }

export interface FileXferStatus {
  readonly _tag: "FileXferStatus"
  readonly id: number
  /** FileXferResult. */
  readonly result: number
  readonly detail?: FileXferStatusDetail
}

/** VDAgentFileXferDataMessage: u32 id, u64 size, then `size` bytes (a view of the payload when decoded). */
export interface FileXferData {
  readonly _tag: "FileXferData"
  readonly id: number
  readonly data: Uint8Array
}

export interface ClientDisconnected {
  readonly _tag: "ClientDisconnected"
}

export interface MaxClipboard {
  readonly _tag: "MaxClipboard"
  /** Largest clipboard in bytes; −1 = unlimited. */
  readonly max: number
}

export interface AudioVolumeSync {
  readonly _tag: "AudioVolumeSync"
  readonly isPlayback: boolean
  readonly mute: boolean
  /** One u16 volume per channel (at most 255 channels). */
  readonly volume: ReadonlyArray<number>
}

/** VDAgentDeviceDisplayInfo: the address is sent NUL-terminated, `device_address_len` counting the NUL. */
export interface DeviceDisplayInfo {
  readonly channelId: number
  readonly monitorId: number
  readonly deviceDisplayId: number
  readonly deviceAddress: string
}

export interface GraphicsDeviceInfo {
  readonly _tag: "GraphicsDeviceInfo"
  readonly devices: ReadonlyArray<DeviceDisplayInfo>
}

export type AgentMessage =
  | MouseState
  | MonitorsConfig
  | Reply
  | Clipboard
  | DisplayConfig
  | AnnounceCapabilities
  | ClipboardGrab
  | ClipboardRequest
  | ClipboardRelease
  | FileXferStart
  | FileXferStatus
  | FileXferData
  | ClientDisconnected
  | MaxClipboard
  | AudioVolumeSync
  | GraphicsDeviceInfo

export type AgentMessageTag = AgentMessage["_tag"]

/** The wire type number of a decoded message. */
export const messageTypeOf = (msg: AgentMessage): MessageType => MessageType[msg._tag]

/**
 * The payload layout, decided by the caps the *sender's peer* announced (GTK `test_agent_cap`, VDD `capabilities`):
 * a client encodes for the agent's caps, the agent encodes for the client's caps.
 */
export interface CodecOptions {
  /** Peer announced CLIPBOARD_SELECTION: clipboard messages carry the 4-byte selection prefix. */
  readonly selection: boolean
  /** Peer announced CLIPBOARD_GRAB_SERIAL: CLIPBOARD_GRAB carries a u32 serial after the prefix. */
  readonly grabSerial: boolean
  /**
   * Peer announced FILE_XFER_DETAILED_ERRORS. Encoding without it drops the detail and folds results ≥ 4 into ERROR
   * (VDD `send_file_xfer_status`, spice-common `agent_prepare_filexfer_status`). Default false.
   */
  readonly detailedErrors?: boolean
  /** Refuse MONITORS_CONFIG with more monitors than this (validation of client input, e.g. MAX_MONITORS). */
  readonly maxMonitors?: number
}
