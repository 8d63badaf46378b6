// Structure-aware generators: random but well-formed vdagent messages (every type of spec §2, in a chosen layout) and
// streams of them framed as the agent or the relay would frame them, plus the golden vectors as seeds.
import { encodeChunkHeader, encodeMessageHeader } from "../../../src/protocol/header.ts"
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"
import { concatBytes, encodeMessage, messageTypeOf } from "../../../src/protocol/index.ts"
import type { AgentMessage, CodecOptions } from "../../../src/protocol/messages.ts"
import { loadGoldenVectors } from "../../golden/load.ts"
import { INTERESTING_U32 } from "./mutate.ts"
import type { Rng } from "./rng.ts"

const u32 = (r: Rng): number => (r.chance(0.3) ? r.pick(INTERESTING_U32) : r.u32())
const i32 = (r: Rng): number => u32(r) | 0
const text = (r: Rng, max: number): string => {
  const alphabet = ["a", "b", "Z", "0", " ", "\\", "=", "\n", "[", "é", "日", "😀", ".", "/", "\t"]
  let s = ""
  for (let i = r.size(max); i > 0; i--) s += r.pick(alphabet)
  return s
}

export const randomLayout = (r: Rng): CodecOptions => ({ selection: r.chance(0.7), grabSerial: r.chance(0.6), detailedErrors: r.chance(0.5) })

/** One valid message of a random type for layout `o`. */
export const randomMessage = (r: Rng, o: CodecOptions, maxData = 256): AgentMessage => {
  const sel = o.selection ? r.int(3) : 0
  const n = r.chance(0.02) ? r.range(16, 20) : r.size(5)
  switch (r.int(16)) {
    case 0: return { _tag: "MouseState", x: u32(r), y: u32(r), buttons: u32(r), displayId: r.int(256) }
    case 1: {
      const monitors = Array.from({ length: n }, () => ({ height: u32(r), width: u32(r), depth: u32(r), x: i32(r), y: i32(r) }))
      return r.chance(0.5)
        ? { _tag: "MonitorsConfig", flags: u32(r) & ~2, monitors }
        : { _tag: "MonitorsConfig", flags: u32(r) | 2, monitors, physicalSize: monitors.map(() => ({ height: r.int(65536), width: r.int(65536) })) }
    }
    case 2: return { _tag: "Reply", type: u32(r), error: u32(r) }
    case 3: return { _tag: "Clipboard", selection: sel, dataType: u32(r), data: r.bytes(r.size(maxData)) }
    case 4: return { _tag: "DisplayConfig", flags: u32(r), depth: u32(r) }
    case 5: return { _tag: "AnnounceCapabilities", request: r.chance(0.5), caps: Array.from({ length: n }, () => u32(r)) }
    case 6: {
      const types = Array.from({ length: n }, () => u32(r))
      return o.grabSerial ? { _tag: "ClipboardGrab", selection: sel, serial: u32(r), types } : { _tag: "ClipboardGrab", selection: sel, types }
    }
    case 7: return { _tag: "ClipboardRequest", selection: sel, dataType: u32(r) }
    case 8: return { _tag: "ClipboardRelease", selection: sel }
    case 9: return { _tag: "FileXferStart", id: u32(r), name: text(r, 40), size: r.int(2 ** 40), ...(r.chance(0.5) ? { fileXferNr: i32(r), fileXferTotal: i32(r) } : {}) }
    case 10: {
      const id = u32(r)
      if (!o.detailedErrors || r.chance(0.5)) return { _tag: "FileXferStatus", id, result: r.int(8) }
      return r.chance(0.5)
        ? { _tag: "FileXferStatus", id, result: 2, detail: { _tag: "Error", errorType: r.int(256), errorCode: u32(r) } }
        : { _tag: "FileXferStatus", id, result: 4, detail: { _tag: "NotEnoughSpace", freeSpace: r.int(2 ** 50) } }
    }
    case 11: return { _tag: "FileXferData", id: u32(r), data: r.bytes(r.size(maxData)) }
    case 12: return { _tag: "ClientDisconnected" }
    case 13: return { _tag: "MaxClipboard", max: i32(r) }
    case 14: return { _tag: "AudioVolumeSync", isPlayback: r.chance(0.5), mute: r.chance(0.5), volume: Array.from({ length: r.size(8) }, () => r.int(65536)) }
    default:
      return { _tag: "GraphicsDeviceInfo", devices: Array.from({ length: n }, () => ({ channelId: u32(r), monitorId: u32(r), deviceDisplayId: u32(r), deviceAddress: text(r, 30).replace(/\0/g, "") || "pci/0000/02.0" })) }
  }
}

/** The payload of a random valid message, with its wire type. */
export const randomPayload = (r: Rng, o: CodecOptions, maxData?: number): { type: number; payload: Uint8Array } => {
  for (;;) {
    const m = randomMessage(r, o, maxData)
    const e = encodeMessage(m, o)
    if (e._tag === "Ok") return { type: messageTypeOf(m), payload: e.value }
  }
}

/** The fuzzers' name for src/protocol's concatBytes. */
export const concat = concatBytes

/** A whole message as one chunk (how the agent sends), or chunked ≤ `maxData` (how hosts send). */
export const frameMessage = (port: number, type: number, payload: Uint8Array, maxData?: number): Uint8Array => {
  if (maxData !== undefined) return encodeChunkedMessage(port, type, payload, maxData)
  const out = new Uint8Array(28 + payload.length)
  encodeChunkHeader({ port, size: 20 + payload.length }, out, 0)
  encodeMessageHeader({ type, size: payload.length }, out, 8)
  out.set(payload, 28)
  return out
}

/**
 * A valid multi-message stream: messages on ports 1 and 2, some as one chunk, some chunked (odd chunk sizes, zero-length
 * chunks), with the chunks of messages on different ports interleaved.
 */
export const randomStream = (r: Rng, o: CodecOptions, messages: number, maxData = 256): Uint8Array => {
  const queues: Uint8Array[][] = [[], []]
  for (let i = 0; i < messages; i++) {
    const port = r.chance(0.7) ? 1 : 2
    const { type, payload } = randomPayload(r, o, maxData)
    const body = concat([encodeMessageHeader({ type, size: payload.length }), payload])
    const chunks: Uint8Array[] = []
    if (r.chance(0.5)) chunks.push(concat([encodeChunkHeader({ port, size: body.length }), body]))
    else {
      const sizes = [r.range(0, 40), r.range(1, 2048), r.range(1, 7)]
      for (let at = 0, k = 0; at < body.length || chunks.length === 0; k++) {
        const n = Math.min(body.length - at, sizes[k % sizes.length]!)
        chunks.push(concat([encodeChunkHeader({ port, size: n }), body.subarray(at, at + n)]))
        at += n
        if (k > 4096) break
      }
    }
    queues[port - 1]!.push(...chunks)
  }
  const out: Uint8Array[] = []
  while (queues[0]!.length + queues[1]!.length > 0) {
    const q = queues[0]!.length === 0 ? queues[1]! : queues[1]!.length === 0 ? queues[0]! : r.chance(0.5) ? queues[0]! : queues[1]!
    out.push(q.shift()!)
  }
  return concat(out)
}

let golden: Uint8Array[] | undefined
/** Byte streams of the golden vectors (captured from the real spice-vdagent 0.22.1). */
export const goldenStreams = (): Uint8Array[] => (golden ??= loadGoldenVectors().map((v) => v.bytes))
