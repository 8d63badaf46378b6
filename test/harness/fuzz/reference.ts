// Independent, deliberately plain reference models of the vdagent framing rules (spec §1.2–1.3, §5.3, §6), written from
// the spec and not from src/protocol: the fuzzers compare the optimised, resumable decoders against them.

export const u32le = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0

/** FNV-1a over bytes, continued from `h`: bodies are compared by hash so event lists stay small. */
export const fnv = (b: Uint8Array, h = 0x811c9dc5): number => {
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193) >>> 0
  return h
}

export interface FramingLimits {
  readonly maxChunk: number
  readonly maxMessage: number
  readonly ports: ReadonlyArray<number>
}

export interface RefResult {
  /** `S<port>:<type>:<size>` at a message header, `E<port>:<hash>` at its end, `X<reason>@<at>` at the error. */
  readonly events: string[]
  /** Start offset of the chunk in which the error was found. */
  readonly errorChunkAt: number | undefined
}

interface RefPort {
  hdr: number[]
  hdrAt: number
  size: number | undefined
  remaining: number
  hash: number
}

/** Parses a whole buffer chunk by chunk, reassembling per port; stops at the first violation or at the end. */
export const referenceParse = (buf: Uint8Array, o: FramingLimits): RefResult => {
  const events: string[] = []
  const ports = new Map<number, RefPort>(o.ports.map((p) => [p, { hdr: [], hdrAt: 0, size: undefined, remaining: 0, hash: 0 }]))
  let pos = 0
  const stop = (reason: string, at: number, chunkAt: number): RefResult => {
    events.push(`X${reason}@${at}`)
    return { events, errorChunkAt: chunkAt }
  }
  while (buf.length - pos >= 8) {
    const chunkAt = pos
    const port = u32le(buf, pos)
    const size = u32le(buf, pos + 4)
    const p = ports.get(port)
    if (p === undefined) return stop("UnknownPort", chunkAt, chunkAt)
    if (size > o.maxChunk) return stop("ChunkTooLarge", chunkAt, chunkAt)
    if (p.size !== undefined && size > p.remaining) return stop("ChunkPastMessageEnd", chunkAt, chunkAt)
    pos += 8
    let left = size
    while (left > 0) {
      if (pos >= buf.length) return { events, errorChunkAt: undefined }
      if (p.size === undefined) {
        if (p.hdr.length === 0) p.hdrAt = pos
        const take = Math.min(20 - p.hdr.length, left, buf.length - pos)
        for (let i = 0; i < take; i++) p.hdr.push(buf[pos + i]!)
        pos += take
        left -= take
        if (p.hdr.length < 20) continue
        const h = Uint8Array.from(p.hdr)
        p.hdr = []
        if (u32le(h, 0) !== 1) return stop("BadProtocol", p.hdrAt, chunkAt)
        const msgSize = u32le(h, 16)
        if (msgSize > o.maxMessage) return stop("MessageTooLarge", p.hdrAt, chunkAt)
        if (left > msgSize) return stop("ChunkPastMessageEnd", p.hdrAt, chunkAt)
        events.push(`S${port}:${u32le(h, 4)}:${msgSize}`)
        if (msgSize === 0) events.push(`E${port}:${fnv(new Uint8Array(0))}`)
        else {
          p.size = msgSize
          p.remaining = msgSize
          p.hash = 0x811c9dc5
        }
        continue
      }
      const take = Math.min(left, buf.length - pos)
      p.hash = fnv(buf.subarray(pos, pos + take), p.hash)
      pos += take
      left -= take
      p.remaining -= take
      if (p.remaining === 0) {
        events.push(`E${port}:${p.hash}`)
        p.size = undefined
      }
    }
  }
  return { events, errorChunkAt: undefined }
}

/** The resynchronisation rule (DESIGN invariant 6), restated: a chunk header + whole message header that could be real. */
export const plausibleAt = (b: Uint8Array, at: number, o: FramingLimits): "yes" | "partial" | "no" => {
  const avail = Math.min(28, b.length - at)
  const tmp = new Uint8Array(28)
  tmp.set(b.subarray(at, at + avail))
  // Each field is judged only when all its bytes are present, except the port, whose prefix must match a port.
  if (avail < 4) return o.ports.some((p) => [0, 1, 2, 3].slice(0, avail).every((i) => tmp[i] === ((p >>> (8 * i)) & 0xff))) ? "partial" : "no"
  if (!o.ports.includes(u32le(tmp, 0))) return "no"
  const chunk = u32le(tmp, 4)
  if (avail >= 8 && (chunk < 20 || chunk > o.maxChunk)) return "no"
  if (avail >= 12 && u32le(tmp, 8) !== 1) return "no"
  if (avail >= 16 && (u32le(tmp, 12) < 1 || u32le(tmp, 12) > 16)) return "no"
  if (avail >= 28 && (u32le(tmp, 24) > o.maxMessage || u32le(tmp, 24) < chunk - 20)) return "no"
  return avail === 28 ? "yes" : "partial"
}
