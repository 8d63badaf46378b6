// Reassembly throughput of the protocol library against a plain memcpy of the same bytes, measured side by side.
import type { Emit } from "./run.ts"
import { MessageAssembler, MessageType, decodeMessage, encodeChunkedMessage } from "../src/protocol/index.ts"

const MiB = 1024 * 1024
const FRAME = 64 * 1024
const RUNS = 15

const now = (): number => Number(process.hrtime.bigint()) / 1e6

/** Median of RUNS timings (ms) of `fn`, each repeating it `reps` times, interleaved with the baseline. */
const sideBySide = (ours: () => void, baseline: () => void, reps: number): { ours: number; baseline: number } => {
  for (let i = 0; i < reps; i++) ours(), baseline() // warm-up: JIT and buffers
  const a: number[] = []
  const b: number[] = []
  for (let r = 0; r < RUNS; r++) {
    let t = now()
    for (let i = 0; i < reps; i++) ours()
    a.push((now() - t) / reps)
    t = now()
    for (let i = 0; i < reps; i++) baseline()
    b.push((now() - t) / reps)
  }
  const median = (xs: number[]) => xs.sort((x, y) => x - y)[xs.length >> 1]!
  return { ours: median(a), baseline: median(b) }
}

/** Transport frames of `wire`, each in its own ArrayBuffer as a socket or WebSocket would deliver them. */
const frames = (wire: Uint8Array, size: number): Uint8Array[] => {
  const out: Uint8Array[] = []
  for (let at = 0; at < wire.length; at += size) out.push(wire.slice(at, at + size))
  return out
}

const singleChunk = (port: number, type: number, payload: Uint8Array): Uint8Array => {
  const wire = new Uint8Array(28 + payload.length)
  const v = new DataView(wire.buffer)
  v.setUint32(0, port, true)
  v.setUint32(4, 20 + payload.length, true)
  v.setUint32(8, 1, true)
  v.setUint32(12, type, true)
  v.setUint32(24, payload.length, true)
  wire.set(payload, 28)
  return wire
}

const largeMessage = (emit: Emit, name: string, wire: Uint8Array, payloadBytes: number, assembler: MessageAssembler): void => {
  const pieces = frames(wire, FRAME)
  const dst = new Uint8Array(wire.length)
  let delivered = 0
  const onMessage = (_: number, __: unknown, body: Uint8Array) => void (delivered += body.length)
  const t = sideBySide(
    () => {
      for (const p of pieces) assembler.push(p, onMessage)
    },
    () => dst.set(wire),
    40,
  )
  if (delivered === 0 || assembler.error !== undefined) throw new Error(`${name}: nothing assembled`)
  const mbps = (ms: number) => payloadBytes / MiB / (ms / 1000)
  emit({ name, value: Math.round(mbps(t.ours)), unit: "MiB/s", baseline: Math.round(mbps(t.baseline)), ratio: +(t.baseline / t.ours).toFixed(3) })
}

const smallMessages = (emit: Emit, name: string, withDecode: boolean): void => {
  const N = 100_000
  const one = singleChunk(2, MessageType.MouseState, Uint8Array.of(100, 0, 0, 0, 200, 0, 0, 0, 2, 0, 0, 0, 0))
  const wire = new Uint8Array(one.length * N)
  for (let i = 0; i < N; i++) wire.set(one, i * one.length)
  const pieces = frames(wire, FRAME)
  const a = new MessageAssembler({ maxChunkSize: 2048, maxMessageSize: 2048 })
  const o = { selection: true, grabSerial: true }
  let count = 0
  const onMessage = withDecode
    ? (_: number, h: { type: number }, body: Uint8Array) => void (decodeMessage(h.type, body, o)._tag === "Ok" && count++)
    : () => void count++
  const t = sideBySide(
    () => {
      for (const p of pieces) a.push(p, onMessage)
    },
    () => {},
    3,
  )
  if (a.error !== undefined || count === 0) throw new Error(`${name}: ${a.error?.detail ?? "no messages"}`)
  emit({ name, value: Math.round(N / (t.ours / 1000)), unit: "msgs/s" })
}

/**
 * The cost floor of any JS reassembly of 2048-byte chunks: one view + Uint8Array.set per chunk payload and no parsing
 * at all, against the same memcpy. It shows how much of the gap is the per-chunk copy call rather than the parser.
 */
const copyFloor = (emit: Emit, wire: Uint8Array): void => {
  const pieces = frames(wire, FRAME)
  // The payload segments the reassembly must copy: every chunk payload, cut where a transport frame ends.
  const segments: Array<{ frame: Uint8Array; at: number; take: number }> = []
  const v = new DataView(wire.buffer, wire.byteOffset, wire.length)
  for (let at = 0; at < wire.length; ) {
    const size = v.getUint32(at + 4, true)
    for (let pos = at + 8; pos < at + 8 + size; ) {
      const frame = pieces[Math.floor(pos / FRAME)]!
      const take = Math.min(at + 8 + size - pos, FRAME - (pos % FRAME))
      segments.push({ frame, at: pos % FRAME, take })
      pos += take
    }
    at += 8 + size
  }
  const dst = new Uint8Array(wire.length)
  const whole = new Uint8Array(wire.length)
  const t = sideBySide(
    () => {
      let fill = 0
      for (const s of segments) {
        dst.set(new Uint8Array(s.frame.buffer, s.frame.byteOffset + s.at, s.take), fill)
        fill += s.take
      }
    },
    () => whole.set(wire),
    40,
  )
  const mbps = (ms: number) => 1 / (ms / 1000)
  emit({ name: "copy floor, 2048-byte chunks (view + set per chunk, no parsing)", value: Math.round(mbps(t.ours)), unit: "MiB/s", baseline: Math.round(mbps(t.baseline)), ratio: +(t.baseline / t.ours).toFixed(3) })
}

export default async (emit: Emit): Promise<void> => {
  const payload = new Uint8Array(MiB).map((_, i) => i * 7)
  const caps = { maxChunkSize: 2 * MiB, maxMessageSize: 2 * MiB }
  const one = singleChunk(1, MessageType.Clipboard, payload)
  const chunked = encodeChunkedMessage(1, MessageType.Clipboard, payload)
  largeMessage(emit, "reassembly 1 MiB, one chunk, 64 KiB frames", one, MiB, new MessageAssembler(caps))
  largeMessage(emit, "reassembly 1 MiB, 2048-byte chunks, 64 KiB frames", chunked, MiB, new MessageAssembler(caps))
  copyFloor(emit, chunked)
  // A consumer that keeps every body pays for a fresh 1 MiB buffer per message.
  largeMessage(emit, "reassembly 1 MiB, 2048-byte chunks, owned bodies", chunked, MiB, new MessageAssembler({ ...caps, bodies: "owned" }))
  smallMessages(emit, "small messages (MOUSE_STATE, one chunk each)", false)
  smallMessages(emit, "small messages + decodeMessage", true)
}
