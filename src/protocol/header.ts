// VDIChunkHeader (8 bytes) and VDAgentMessage (20 bytes) codecs, little-endian (spec §1.2, §1.3). The one place that
// knows where a header field sits: every parser (stream-parser.ts, resync.ts, the session's chunk tracker, the
// bridge's chunking check) reads headers through the readers below.
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, Port, VD_AGENT_PROTOCOL } from "./constants.ts"
import { type Decoded, type InvalidReason, invalid, need, ok, view } from "./decoded.ts"
import { u32At as wireU32At } from "./wire.ts"

/** A module-local binding (folded by V8, unlike an import: see stream-parser.ts). */
const u32At = wireU32At

export interface ChunkHeader {
  readonly port: number
  readonly size: number
}

export interface MessageHeader {
  readonly protocol: number
  readonly type: number
  /** u64 opaque as two u32 halves: every reference sender writes 0 and no receiver interprets it. */
  readonly opaqueLo: number
  readonly opaqueHi: number
  readonly size: number
}

export const isKnownPort = (port: number): boolean => port === Port.Client || port === Port.Server

// Field readers of a header starting at `at` (the caller has checked that its bytes are there): a parser's hot loop
// reads one field without building a header object.
export const chunkPortAt = u32At
export const chunkSizeAt = (b: Uint8Array, at: number): number => u32At(b, at + 4)
export const messageProtocolAt = u32At
export const messageTypeAt = (b: Uint8Array, at: number): number => u32At(b, at + 4)
export const messageSizeAt = (b: Uint8Array, at: number): number => u32At(b, at + 16)

/** The chunk header at `at`, unchecked (CHUNK_HEADER_SIZE bytes must be there). */
export const readChunkHeader = (b: Uint8Array, at: number): ChunkHeader => ({ port: u32At(b, at), size: u32At(b, at + 4) })

/** The message header at `at`, unchecked (MESSAGE_HEADER_SIZE bytes must be there). */
export const readMessageHeader = (b: Uint8Array, at: number): MessageHeader => ({
  protocol: u32At(b, at),
  type: u32At(b, at + 4),
  opaqueLo: u32At(b, at + 8),
  opaqueHi: u32At(b, at + 12),
  size: u32At(b, at + 16),
})

// The checks every parser makes on a header before reading any body. Split in two so the hot path stays small
// enough for V8 to inline into a parser: the check names the fault, the message for it is built only on failure.

/** Why a chunk's declared size is refused, if it is. */
export const chunkSizeFault = (size: number, maxSize: number): "ChunkTooLarge" | undefined => (size > maxSize ? "ChunkTooLarge" : undefined)

/** Why a message header is refused, if it is: not protocol 1, or a declared size above the cap. */
export const messageHeaderFault = (h: MessageHeader, maxSize: number): "BadProtocol" | "MessageTooLarge" | undefined =>
  h.protocol !== VD_AGENT_PROTOCOL ? "BadProtocol" : h.size > maxSize ? "MessageTooLarge" : undefined

/** The detail of a fault found by chunkSizeFault (`value`: the size) or messageHeaderFault (`value`: the header). */
export const headerFaultDetail = (fault: InvalidReason, value: number | MessageHeader, maxSize: number): string => {
  if (typeof value === "number") return `chunk size ${value} exceeds the cap ${maxSize}`
  return fault === "BadProtocol" ? `message protocol ${value.protocol}, expected ${VD_AGENT_PROTOCOL}` : `message size ${value.size} exceeds the cap ${maxSize}`
}

// A decoder never throws on bad input and checks the declared size before waiting for the body.
export const decodeChunkHeader = (buf: Uint8Array, at: number, maxSize: number): Decoded<ChunkHeader> => {
  if (buf.length - at < CHUNK_HEADER_SIZE) return need(CHUNK_HEADER_SIZE - (buf.length - at))
  const h = readChunkHeader(buf, at)
  if (!isKnownPort(h.port)) return invalid("UnknownPort", at, `chunk port ${h.port} is neither 1 (client) nor 2 (server)`)
  const bad = chunkSizeFault(h.size, maxSize)
  return bad === undefined ? ok(h, at + CHUNK_HEADER_SIZE) : invalid(bad, at, headerFaultDetail(bad, h.size, maxSize))
}

export const encodeChunkHeader = (h: ChunkHeader, out: Uint8Array = new Uint8Array(CHUNK_HEADER_SIZE), at = 0): Uint8Array => {
  const v = view(out, at, CHUNK_HEADER_SIZE)
  v.setUint32(0, h.port, true)
  v.setUint32(4, h.size, true)
  return out
}

export const decodeMessageHeader = (buf: Uint8Array, at: number, maxSize: number): Decoded<MessageHeader> => {
  if (buf.length - at < MESSAGE_HEADER_SIZE) return need(MESSAGE_HEADER_SIZE - (buf.length - at))
  const h = readMessageHeader(buf, at)
  const bad = messageHeaderFault(h, maxSize)
  return bad === undefined ? ok(h, at + MESSAGE_HEADER_SIZE) : invalid(bad, at, headerFaultDetail(bad, h, maxSize))
}

export const encodeMessageHeader = (
  h: { readonly type: number; readonly size: number; readonly opaqueLo?: number; readonly opaqueHi?: number },
  out: Uint8Array = new Uint8Array(MESSAGE_HEADER_SIZE),
  at = 0,
): Uint8Array => {
  const v = view(out, at, MESSAGE_HEADER_SIZE)
  v.setUint32(0, VD_AGENT_PROTOCOL, true)
  v.setUint32(4, h.type, true)
  v.setUint32(8, h.opaqueLo ?? 0, true)
  v.setUint32(12, h.opaqueHi ?? 0, true)
  v.setUint32(16, h.size, true)
  return out
}
