// Resynchronisation after garbage: the next offset where a plausible VDIChunkHeader + VDAgentMessage header starts
// (spec §1.2–1.3; DESIGN invariant 6).
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE, VD_AGENT_PROTOCOL } from "./constants.ts"
import { type Need, type Ok, ok } from "./decoded.ts"
import { chunkPortAt, chunkSizeAt, messageProtocolAt, messageSizeAt, messageTypeAt } from "./header.ts"

const CANDIDATE = CHUNK_HEADER_SIZE + MESSAGE_HEADER_SIZE
const FIRST_TYPE = 1
const LAST_TYPE = 16

export interface ResyncOptions {
  readonly maxChunkSize: number
  readonly maxMessageSize: number
  /** Ports accepted (default 1 and 2). */
  readonly ports?: ReadonlyArray<number>
}

/** Need: nothing plausible starts before `from`; keep `buf.subarray(from)` and call again with more bytes appended. */
export type Resync = Ok<number> | (Need & { readonly from: number })

/**
 * Why each test: ports are 1|2; a message's first chunk holds its whole 20-byte header (every reference sender does
 * this), protocol is 1 and the type is a known one; the message either ends with the chunk (the real agent sends one
 * chunk per message) or continues past it; both sizes are under their caps.
 */
const plausible = (b: Uint8Array, at: number, avail: number, o: ResyncOptions): boolean => {
  // Check only the bytes present, so a short tail is rejected as early as possible.
  if (avail < 4) return (o.ports ?? [1, 2]).some((port) => startsU32(b, at, avail, port))
  if (!(o.ports ?? [1, 2]).includes(chunkPortAt(b, at))) return false
  if (avail < 8) return true
  const chunk = chunkSizeAt(b, at)
  if (chunk < MESSAGE_HEADER_SIZE || chunk > o.maxChunkSize) return false
  const m = at + CHUNK_HEADER_SIZE
  if (avail >= 12 && messageProtocolAt(b, m) !== VD_AGENT_PROTOCOL) return false
  if (avail >= 16) {
    const type = messageTypeAt(b, m)
    if (type < FIRST_TYPE || type > LAST_TYPE) return false
  }
  if (avail >= CANDIDATE) {
    const size = messageSizeAt(b, m)
    if (size > o.maxMessageSize || size < chunk - MESSAGE_HEADER_SIZE) return false
  }
  return true
}

/** Whether the `avail` (< 4) bytes at `at` begin the little-endian encoding of `value`. */
const startsU32 = (b: Uint8Array, at: number, avail: number, value: number): boolean => {
  for (let i = 0; i < avail; i++) if (b[at + i] !== ((value >>> (8 * i)) & 0xff)) return false
  return true
}

/** Scans `buf` from `from` for the first plausible chunk start. Never throws. */
export const findResync = (buf: Uint8Array, from: number, o: ResyncOptions): Resync => {
  for (let at = Math.max(0, from); at < buf.length; at++) {
    const avail = Math.min(CANDIDATE, buf.length - at)
    if (!plausible(buf, at, avail, o)) continue
    if (avail === CANDIDATE) return ok(at, at)
    return { _tag: "Need", bytes: CANDIDATE - avail, from: at }
  }
  return { _tag: "Need", bytes: CANDIDATE, from: buf.length }
}
