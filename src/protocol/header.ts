// VDIChunkHeader (8 bytes) and VDAgentMessage (20 bytes) codecs, little-endian (spec §1.2, §1.3).
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, Port, VD_AGENT_PROTOCOL } from "./constants.ts"
import { type Decoded, invalid, need, ok, view } from "./decoded.ts"

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

// A decoder never throws on bad input and checks the declared size before waiting for the body.
export const decodeChunkHeader = (buf: Uint8Array, at: number, maxSize: number): Decoded<ChunkHeader> => {
  if (buf.length - at < CHUNK_HEADER_SIZE) return need(CHUNK_HEADER_SIZE - (buf.length - at))
  const v = view(buf, at, CHUNK_HEADER_SIZE)
  const port = v.getUint32(0, true)
  const size = v.getUint32(4, true)
  if (!isKnownPort(port)) return invalid("UnknownPort", at, `chunk port ${port} is neither 1 (client) nor 2 (server)`)
  if (size > maxSize) return invalid("ChunkTooLarge", at, `chunk size ${size} exceeds the cap ${maxSize}`)
  return ok({ port, size }, at + CHUNK_HEADER_SIZE)
}

export const encodeChunkHeader = (h: ChunkHeader, out: Uint8Array = new Uint8Array(CHUNK_HEADER_SIZE), at = 0): Uint8Array => {
  const v = view(out, at, CHUNK_HEADER_SIZE)
  v.setUint32(0, h.port, true)
  v.setUint32(4, h.size, true)
  return out
}

export const decodeMessageHeader = (buf: Uint8Array, at: number, maxSize: number): Decoded<MessageHeader> => {
  if (buf.length - at < MESSAGE_HEADER_SIZE) return need(MESSAGE_HEADER_SIZE - (buf.length - at))
  const v = view(buf, at, MESSAGE_HEADER_SIZE)
  const protocol = v.getUint32(0, true)
  if (protocol !== VD_AGENT_PROTOCOL) return invalid("BadProtocol", at, `message protocol ${protocol}, expected ${VD_AGENT_PROTOCOL}`)
  const size = v.getUint32(16, true)
  if (size > maxSize) return invalid("MessageTooLarge", at, `message size ${size} exceeds the cap ${maxSize}`)
  return ok(
    { protocol, type: v.getUint32(4, true), opaqueLo: v.getUint32(8, true), opaqueHi: v.getUint32(12, true), size },
    at + MESSAGE_HEADER_SIZE,
  )
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
