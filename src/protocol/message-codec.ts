// One decoder and one encoder for every VDAgentMessage payload, dispatching on the wire type (spec §2).
import * as clip from "./codec-clipboard.ts"
import * as disp from "./codec-display.ts"
import * as xfer from "./codec-file-xfer.ts"
import * as misc from "./codec-misc.ts"
import { Cap, MessageType } from "./constants.ts"
import { type Parsed, invalid } from "./decoded.ts"
import { type Caps, hasCap } from "./caps.ts"
import type { AgentMessage, CodecOptions } from "./messages.ts"

/**
 * Decodes a complete payload of wire type `type`. Never throws; unknown types are `UnknownType`. Byte fields
 * (clipboard data, file data) are views of `payload`.
 */
export const decodeMessage = (type: number, payload: Uint8Array, o: CodecOptions): Parsed<AgentMessage> => {
  switch (type) {
    case MessageType.MouseState: return disp.decodeMouseState(payload)
    case MessageType.MonitorsConfig: return disp.decodeMonitorsConfig(payload, o.maxMonitors)
    case MessageType.Reply: return misc.decodeReply(payload)
    case MessageType.Clipboard: return clip.decodeClipboard(payload, o)
    case MessageType.DisplayConfig: return disp.decodeDisplayConfig(payload)
    case MessageType.AnnounceCapabilities: return misc.decodeAnnounceCapabilities(payload)
    case MessageType.ClipboardGrab: return clip.decodeClipboardGrab(payload, o)
    case MessageType.ClipboardRequest: return clip.decodeClipboardRequest(payload, o)
    case MessageType.ClipboardRelease: return clip.decodeClipboardRelease(payload, o)
    case MessageType.FileXferStart: return xfer.decodeFileXferStart(payload)
    case MessageType.FileXferStatus: return xfer.decodeFileXferStatus(payload)
    case MessageType.FileXferData: return xfer.decodeFileXferData(payload)
    case MessageType.ClientDisconnected: return misc.decodeClientDisconnected(payload)
    case MessageType.MaxClipboard: return misc.decodeMaxClipboard(payload)
    case MessageType.AudioVolumeSync: return misc.decodeAudioVolumeSync(payload)
    case MessageType.GraphicsDeviceInfo: return disp.decodeGraphicsDeviceInfo(payload)
    default: return invalid("UnknownType", 0, `message type ${type} is not one of 1..16`)
  }
}

/** Encodes the payload (no message header) in the layout `o` describes; Invalid for out-of-range or inexpressible values. */
export const encodeMessage = (msg: AgentMessage, o: CodecOptions): Parsed<Uint8Array> => {
  switch (msg._tag) {
    case "MouseState": return disp.encodeMouseState(msg)
    case "MonitorsConfig": return disp.encodeMonitorsConfig(msg)
    case "Reply": return misc.encodeReply(msg)
    case "Clipboard": return clip.encodeClipboard(msg, o)
    case "DisplayConfig": return disp.encodeDisplayConfig(msg)
    case "AnnounceCapabilities": return misc.encodeAnnounceCapabilities(msg)
    case "ClipboardGrab": return clip.encodeClipboardGrab(msg, o)
    case "ClipboardRequest": return clip.encodeClipboardRequest(msg, o)
    case "ClipboardRelease": return clip.encodeClipboardRelease(msg, o)
    case "FileXferStart": return xfer.encodeFileXferStart(msg)
    case "FileXferStatus": return xfer.encodeFileXferStatus(msg, o.detailedErrors ?? false)
    case "FileXferData": return xfer.encodeFileXferData(msg)
    case "ClientDisconnected": return misc.encodeClientDisconnected(msg)
    case "MaxClipboard": return misc.encodeMaxClipboard(msg)
    case "AudioVolumeSync": return misc.encodeAudioVolumeSync(msg)
    case "GraphicsDeviceInfo": return disp.encodeGraphicsDeviceInfo(msg)
  }
}

/** A message's payload as its encoded fields and the sender's bytes that end it, not joined into one buffer. */
export interface MessageParts {
  readonly head: Uint8Array
  readonly body: Uint8Array
}

const NO_BODY = new Uint8Array(0)

/**
 * Encodes like encodeMessage, but a CLIPBOARD's data or a FILE_XFER_DATA's block is returned as `body`, a view of the
 * message's own bytes rather than a copy (a 10 MiB clipboard is not copied to be sent); other messages are all `head`.
 */
export const encodeMessageParts = (msg: AgentMessage, o: CodecOptions): Parsed<MessageParts> => {
  switch (msg._tag) {
    case "Clipboard": return withBody(clip.encodeClipboardHead(msg, o), msg.data)
    case "FileXferData": return withBody(xfer.encodeFileXferDataHead(msg), msg.data)
    default: return withBody(encodeMessage(msg, o), NO_BODY)
  }
}

const withBody = (head: Parsed<Uint8Array>, body: Uint8Array): Parsed<MessageParts> => (head._tag === "Ok" ? { _tag: "Ok", value: { head: head.value, body } } : head)

/** The layout for messages sent to a peer that announced `peerCaps`. */
export const codecOptionsFor = (peerCaps: Caps, extra: Pick<CodecOptions, "maxMonitors"> = {}): CodecOptions => ({
  selection: hasCap(peerCaps, Cap.ClipboardSelection),
  grabSerial: hasCap(peerCaps, Cap.ClipboardGrabSerial),
  detailedErrors: hasCap(peerCaps, Cap.FileXferDetailedErrors),
  ...extra,
})
