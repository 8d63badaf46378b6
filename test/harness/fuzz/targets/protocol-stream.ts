// Fuzz target "stream": StreamParser, MessageAssembler and findResync on hostile agent byte streams. Oracles: never a
// throw; the events equal an independent reference parser's (src/protocol vs test/harness/fuzz/reference.ts); they do not
// depend on how the bytes are split; the assembler delivers exactly the reference's bodies and holds at most one
// message per port; after garbage, resynchronisation lands on the first plausible header and parsing continues.
import { MessageAssembler } from "../../../../src/protocol/assembler.ts"
import type { MessageHeader } from "../../../../src/protocol/header.ts"
import { findResync } from "../../../../src/protocol/resync.ts"
import { type StreamSink, StreamParser } from "../../../../src/protocol/stream-parser.ts"
import type { Invalid } from "../../../../src/protocol/decoded.ts"
import { check, type Features, type FuzzTarget } from "../engine.ts"
import { concat, goldenStreams, randomLayout, randomStream } from "../gen-messages.ts"
import { Provider } from "../provider.ts"
import { type FramingLimits, fnv, plausibleAt, referenceParse } from "../reference.ts"
import { Rng } from "../rng.ts"

const CHUNK_CAPS = [2048, 65536, 0xffff_ffff, 20] as const
const MESSAGE_CAPS = [4096, 1024 * 1024, 64, 0] as const

/** Records parser events in the reference's normal form (a whole message = start + end). */
class Recorder implements StreamSink {
  readonly events: string[] = []
  private readonly hashes = new Map<number, number>()
  constructor(private readonly base: number) {}
  message(port: number, h: MessageHeader, body: Uint8Array): void {
    check(body.length === h.size, `message body ${body.length} ≠ header size ${h.size}`)
    this.events.push(`S${port}:${h.type}:${h.size}`, `E${port}:${fnv(body)}`)
  }
  start(port: number, h: MessageHeader): void {
    check(!this.hashes.has(port), `start on port ${port} while a message is open`)
    this.events.push(`S${port}:${h.type}:${h.size}`)
    this.hashes.set(port, 0x811c9dc5)
  }
  data(port: number, bytes: Uint8Array): void {
    const h = this.hashes.get(port)
    check(h !== undefined, `data on port ${port} with no message open`)
    this.hashes.set(port, fnv(bytes, h))
  }
  end(port: number): void {
    const h = this.hashes.get(port)
    check(h !== undefined, `end on port ${port} with no message open`)
    this.events.push(`E${port}:${h}`)
    this.hashes.delete(port)
  }
  error(e: Invalid): void {
    this.events.push(`X${e.reason}@${e.at + this.base}`)
  }
}

/** `S<port>:<type>` with unknown types folded together, so the feature space stays finite. */
const startFeature = (e: string): string => {
  const [port, type] = e.slice(1).split(":")
  return `S${port}:${Number(type) >= 1 && Number(type) <= 16 ? type : "unknown"}`
}

const limitsOf = (cfg: number): FramingLimits => ({ maxChunk: CHUNK_CAPS[cfg & 3]!, maxMessage: MESSAGE_CAPS[(cfg >> 2) & 3]!, ports: [1, 2] })

/** Parses `buf` from `base` in pieces cut at `cuts`; returns events and the consumed count of the failing push. */
const parseSplit = (buf: Uint8Array, o: FramingLimits, cuts: number[], base: number) => {
  const parser = new StreamParser({ maxChunkSize: o.maxChunk, maxMessageSize: o.maxMessage })
  const rec = new Recorder(base)
  let from = 0
  for (const cut of [...cuts, buf.length]) {
    if (cut < from) continue
    const n = parser.push(buf.subarray(from, cut), rec)
    if (parser.error !== undefined) {
      check(n <= cut - from, `push consumed ${n} of ${cut - from}`)
      check(parser.push(buf.subarray(from, cut), rec) === 0, "a failed parser consumed more bytes")
      return { events: rec.events, errorChunkAt: from + n, parser }
    }
    check(n === cut - from, `push consumed ${n} of ${cut - from} without an error`)
    from = cut
  }
  return { events: rec.events, errorChunkAt: undefined, parser }
}

const sameEvents = (a: string[], b: string[], what: string): void => {
  const n = Math.max(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) check(false, `${what}: event ${i} is ${a[i]} vs ${b[i]}`)
}

const runSegment = (buf: Uint8Array, o: FramingLimits, cuts: number[], base: number, f: Features, asm: MessageAssembler | undefined): number | undefined => {
  const ref = referenceParse(buf, o)
  const whole = parseSplit(buf, o, [], base)
  const refEvents = ref.events.map((e) => (e.startsWith("X") ? e.replace(/@(\d+)$/, (_, at: string) => `@${Number(at) + base}`) : e))
  sameEvents(whole.events, refEvents, "parser vs reference")
  if (ref.errorChunkAt !== undefined) check(whole.errorChunkAt === ref.errorChunkAt, `error chunk at ${whole.errorChunkAt}, reference ${ref.errorChunkAt}`)
  sameEvents(parseSplit(buf, o, cuts, base).events, whole.events, "split vs whole")
  // The assembler (owned bodies) must hand out exactly the reference's messages and stay within one message per port.
  // The assembler (reused across resyncs through reset()) must hand out exactly the reference's messages and stay
  // within one message per port; borrowed bodies are hashed during the call, as their contract says.
  if (asm !== undefined) {
    asm.reset()
    const bodies: string[] = []
    let from = 0
    for (const cut of [...cuts, buf.length]) {
      if (cut < from) continue
      asm.push(buf.subarray(from, cut), (port, _h, body) => bodies.push(`E${port}:${fnv(body)}`))
      check(asm.bufferedBytes <= 2 * o.maxMessage, `assembler holds ${asm.bufferedBytes} bytes, cap 2 × ${o.maxMessage}`)
      if (asm.error !== undefined) break
      from = cut
    }
    sameEvents(bodies, refEvents.filter((e) => e.startsWith("E")), "assembler vs reference")
    if (asm.error === undefined) check(asm.atBoundary === whole.parser.atBoundary, "assembler and parser disagree on the boundary")
  }
  for (const e of whole.events) f.edge(e.startsWith("S") ? startFeature(e) : e.startsWith("E") ? e.slice(0, 2) : e.replace(/@\d+$/, ""))
  f.count("events", whole.events.length)
  if (whole.errorChunkAt === undefined) f.add(whole.parser.atBoundary ? "end:boundary" : `end:partial:${whole.parser.partialPorts().join(",")}`)
  return whole.errorChunkAt
}

/** Up to 8 cut points, from the input's second byte: mutating that byte re-splits the same stream. */
const cutsOf = (seed: number, len: number): number[] => {
  const r = new Rng(seed * 65599 + len)
  const n = r.int(9)
  const cuts: number[] = []
  for (let i = 0; i < n; i++) cuts.push(r.chance(0.5) ? r.int(len + 1) : Math.min(len, r.int(40)))
  return cuts.sort((a, b) => a - b)
}

export const streamTarget: FuzzTarget = {
  name: "stream",
  description: "StreamParser + MessageAssembler + findResync vs a reference parser, any split, with resynchronisation",
  maxInputBytes: 16 * 1024,
  covers: ["src/protocol/stream-parser.ts", "src/protocol/assembler.ts", "src/protocol/resync.ts"],
  seeds: () => goldenStreams().map((g) => concat([Uint8Array.of(0x01, 0), g])),
  generate: (r: Rng) => {
    const stream = randomStream(r, randomLayout(r), r.range(1, 6), r.chance(0.2) ? 3000 : 200)
    return concat([Uint8Array.of((r.chance(0.5) ? 0x05 : 0x00) | (r.int(4) << 4), r.int(256)), r.bytes(2 * r.int(8)), stream])
  },
  run: (input, f) => {
    const p = new Provider(input)
    const o = limitsOf(p.u8())
    f.add(`cfg:${o.maxChunk}:${o.maxMessage}`)
    const cuts = cutsOf(p.u8(), p.left)
    const buf = p.rest()
    // Garbage → resynchronise at the first plausible header after the bad chunk, as the session does; at most 16 times.
    const cfg = input[0] ?? 0
    const asm =
      o.maxMessage <= 1024 * 1024
        ? new MessageAssembler({ maxChunkSize: o.maxChunk, maxMessageSize: o.maxMessage, bodies: (cfg & 16) !== 0 ? "owned" : "borrowed", retainBytes: (cfg & 32) !== 0 ? 64 : 1 << 20 })
        : undefined
    f.add(`asm:${asm === undefined ? "none" : cfg & 48}`)
    let base = 0
    for (let round = 0; round < 16; round++) {
      const seg = buf.subarray(base)
      const bad = runSegment(seg, o, cuts.map((c) => Math.max(0, c - base)), base, f, asm)
      if (bad === undefined) return
      const from = base + bad + 1
      const r = findResync(buf, from, { maxChunkSize: o.maxChunk, maxMessageSize: o.maxMessage })
      const end = r._tag === "Ok" ? r.value : r.from
      check(end >= from && end <= buf.length, `resync at ${end} outside [${from}, ${buf.length}]`)
      for (let at = from; at < end; at++) check(plausibleAt(buf, at, o) === "no", `resync skipped a plausible header at ${at} (landed ${end})`)
      if (r._tag === "Need") {
        check(end === buf.length || plausibleAt(buf, end, o) === "partial", `resync Need at ${end} without a partial candidate`)
        f.add(`resync:need:${buf.length - end}`)
        return
      }
      check(plausibleAt(buf, end, o) === "yes", `resync landed on ${end}, not a plausible header`)
      f.edge("resync")
      base = end
    }
  },
}
