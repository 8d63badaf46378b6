// Header-only size checks (spice-common `agent_message_check_size`, spec §2) plus the largest payload a relay should
// accept from a client per type, so that an oversized message is refused before its body is buffered.
import { FILE_XFER_DATA_BLOCK, MAX_MONITORS, MessageType } from "./constants.ts"
import { type Invalid, invalid } from "./decoded.ts"
import type { CodecOptions } from "./messages.ts"

/** Largest payload accepted per wire type (index = type). */
export type MessageLimits = Readonly<Record<number, number>>

/** spice-gtk's default max-clipboard (100 MiB), announced to the agent with MAX_CLIPBOARD. */
export const DEFAULT_MAX_CLIPBOARD = 100 * 1024 * 1024

/**
 * What a relay should accept from a client: exact sizes where the type is fixed-size, and for the rest the largest
 * payload the reference clients produce, with headroom.
 */
export const clientMessageLimits = (maxClipboard = DEFAULT_MAX_CLIPBOARD): MessageLimits => ({
  [MessageType.MouseState]: 13,
  // 8 + 16 × (20-byte VDAgentMonConfig + 4-byte VDAgentMonitorMM): spice-gtk's MAX_DISPLAY with physical sizes.
  [MessageType.MonitorsConfig]: 8 + MAX_MONITORS * 24,
  [MessageType.Reply]: 8,
  [MessageType.Clipboard]: 8 + maxClipboard,
  [MessageType.DisplayConfig]: 8,
  // 64 caps words: 2048 bits where 18 are defined.
  [MessageType.AnnounceCapabilities]: 4 + 4 * 64,
  // Prefix, serial and 64 types: there are 7 clipboard types (QEMU's agent even refuses more than 10).
  [MessageType.ClipboardGrab]: 8 + 4 * 64,
  [MessageType.ClipboardRequest]: 8,
  [MessageType.ClipboardRelease]: 4,
  // id + a key file with a name of up to 4096 UTF-8 bytes (escaped) and four numeric keys.
  [MessageType.FileXferStart]: 4 + 16384,
  [MessageType.FileXferStatus]: 16,
  // spice-gtk sends file data in blocks of 32 × 2048 bytes.
  [MessageType.FileXferData]: 12 + FILE_XFER_DATA_BLOCK,
  [MessageType.ClientDisconnected]: 0,
  [MessageType.MaxClipboard]: 4,
  // nchannels is a u8.
  [MessageType.AudioVolumeSync]: 3 + 2 * 255,
  // One entry per monitor with a device address of up to 256 bytes.
  [MessageType.GraphicsDeviceInfo]: 4 + MAX_MONITORS * (16 + 256),
})

export const CLIENT_MESSAGE_LIMITS: MessageLimits = clientMessageLimits()

type Rule = { readonly min: number; readonly exact: boolean; readonly sel: boolean; readonly ser: boolean }
const rule = (min: number, exact: boolean, sel = false, ser = false): Rule => ({ min, exact, sel, ser })

/** agent_message_min_size and whether the size is exact, per type (index = type). */
const RULES: ReadonlyArray<Rule | undefined> = [
  undefined,
  rule(13, true), // MOUSE_STATE
  rule(8, false), // MONITORS_CONFIG
  rule(8, true), // REPLY
  rule(4, false, true), // CLIPBOARD
  rule(8, true), // DISPLAY_CONFIG
  rule(4, false), // ANNOUNCE_CAPABILITIES
  rule(0, false, true, true), // CLIPBOARD_GRAB
  rule(4, true, true), // CLIPBOARD_REQUEST
  rule(0, true, true), // CLIPBOARD_RELEASE
  rule(4, false), // FILE_XFER_START
  rule(8, false), // FILE_XFER_STATUS
  rule(12, false), // FILE_XFER_DATA
  rule(0, true), // CLIENT_DISCONNECTED
  rule(4, true), // MAX_CLIPBOARD
  rule(3, false), // AUDIO_VOLUME_SYNC
  rule(4, false), // GRAPHICS_DEVICE_INFO
]

export interface SizeCheckOptions extends Pick<CodecOptions, "selection" | "grabSerial"> {
  /** Per-type maxima (e.g. CLIENT_MESSAGE_LIMITS); without it only the receiver's minimum/exact rules apply. */
  readonly limits?: MessageLimits
}

/**
 * Checks a message's declared payload size from its header alone; undefined when acceptable. The 1-byte
 * CLIPBOARD_RELEASE of spice-vdagentd is accepted. Count fields inside the body are checked by the decoders.
 */
export const checkMessageSize = (type: number, size: number, o: SizeCheckOptions): Invalid | undefined => {
  const r = RULES[type]
  if (r === undefined) return invalid("UnknownType", 0, `message type ${type} is not one of 1..16`)
  const min = r.min + (r.sel && o.selection ? 4 : 0) + (r.ser && o.grabSerial ? 4 : 0)
  const quirk = type === MessageType.ClipboardRelease && size === 1
  if (!quirk && (r.exact ? size !== min : size < min))
    return invalid("BadSize", 0, `message type ${type} with ${size} payload bytes (${r.exact ? "=" : "≥"} ${min} required)`)
  const max = o.limits?.[type]
  if (max !== undefined && size > max) return invalid("MessageTooLarge", 0, `message type ${type} with ${size} payload bytes exceeds the limit ${max}`)
  return undefined
}
