// The vdagent protocol library's public API: framing, assembly, resynchronisation, payload codecs and size rules.
export * from "./bytes.ts"
export * from "./constants.ts"
export * from "./decoded.ts"
export * from "./header.ts"
export * from "./caps.ts"
export * from "./stream-parser.ts"
export * from "./assembler.ts"
export * from "./resync.ts"
export * from "./chunker.ts"
export * from "./messages.ts"
export * from "./message-codec.ts"
export * from "./size-rules.ts"
export { formatFileXferKeys, parseFileXferKeys, FILE_XFER_GROUP, type FileXferKeys, type KeyFileResult } from "./key-file.ts"
export {
  decodeClipboard,
  decodeClipboardGrab,
  decodeClipboardRelease,
  decodeClipboardRequest,
  encodeClipboard,
  encodeClipboardGrab,
  encodeClipboardRelease,
  encodeClipboardRequest,
} from "./codec-clipboard.ts"
export {
  decodeDisplayConfig,
  decodeGraphicsDeviceInfo,
  decodeMonitorsConfig,
  decodeMouseState,
  encodeDisplayConfig,
  encodeGraphicsDeviceInfo,
  encodeMonitorsConfig,
  encodeMouseState,
} from "./codec-display.ts"
export {
  decodeAnnounceCapabilities,
  decodeAudioVolumeSync,
  decodeClientDisconnected,
  decodeMaxClipboard,
  decodeReply,
  encodeAnnounceCapabilities,
  encodeAudioVolumeSync,
  encodeClientDisconnected,
  encodeMaxClipboard,
  encodeReply,
} from "./codec-misc.ts"
export {
  decodeFileXferData,
  decodeFileXferStart,
  decodeFileXferStatus,
  encodeFileXferData,
  encodeFileXferStart,
  encodeFileXferStatus,
} from "./codec-file-xfer.ts"
