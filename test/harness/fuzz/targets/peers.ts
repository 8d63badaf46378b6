// Fuzz targets "bridge-guest" and "client-inbox": the two ends where "whole" is enforced (DESIGN invariant 1). The
// bridge's GuestAssembler gets hostile relay write/abort sequences (gaps, duplicates, bad ports, bad chunking, over-size)
// and must write to the chardev only bytes the agent parses as whole messages it was sent; the SDK's Inbox gets hostile
// msg/more/abort frames and must surface only messages of exactly their declared size.
import { GuestAssembler, type DiscardReason } from "../../../../src/bridge/guest-assembler.ts"
import { Inbox } from "../../../../src/client/inbox.ts"
import { encodeChunkedMessage } from "../../../../src/protocol/chunker.ts"
import { check, type Features, type FuzzTarget } from "../engine.ts"
import { concat, randomLayout, randomPayload } from "../gen-messages.ts"
import { Provider, ProgramWriter } from "../provider.ts"
import { fnv, referenceParse } from "../reference.ts"
import { Rng } from "../rng.ts"

const LIMITS = { maxMessageBytes: 64 * 1024, bufferBytes: 96 * 1024, maxChunkData: 2048 }

const guestRun = (input: Uint8Array, f: Features): void => {
  const p = new Provider(input)
  const discards: DiscardReason[] = []
  const g = new GuestAssembler(LIMITS, { discarded: (_port, reason) => discards.push(reason) })
  const sent = new Set<string>()
  const out: Uint8Array[] = []
  let pos = 0
  let lastWrote = 0
  const partial = new Map<number, Uint8Array[]>()
  // A relay that breaks its own contract (overlapping positions with other bytes, a message without its end, garbage)
  // may get the wrong bytes written; the agent must still never see broken framing. Content is compared otherwise.
  let lawless = false
  for (let i = 0; i < 64 && !p.done; i++) {
    const op = p.u8() % 6
    f.edge(`g${op}`)
    if (op <= 2) {
      // A relay write: a whole chunked message (possibly cut into several writes), or hostile bytes.
      const port = [1, 2, 1, 2, 0, 3][p.below(6)]!
      const r = new Rng(p.u32())
      const hostile = p.below(8) === 0
      const { type, payload } = randomPayload(r, randomLayout(r), r.chance(0.05) ? 70_000 : 600)
      const bytes = hostile ? p.bytes() : encodeChunkedMessage(port, type, payload)
      if (!hostile && port >= 1 && port <= 2) sent.add(`${port}:${fnv(bytes)}`)
      const cuts = 1 + p.below(3)
      const where = p.below(5)
      const at = where < 3 ? pos : where === 3 ? pos + 1 + p.below(16) : Math.max(0, pos - 1 - p.below(16))
      if (hostile || at < pos) lawless = true
      let o = 0
      for (let k = 0; k < cuts; k++) {
        const n = k === cuts - 1 ? bytes.length - o : Math.floor(bytes.length / cuts)
        const end = k === cuts - 1 && p.below(16) !== 0
        if (k === cuts - 1 && !end) lawless = true
        g.receive(at + o, port, bytes.subarray(o, o + n), end)
        o += n
      }
      pos = Math.max(pos, at + bytes.length)
    } else if (op === 3) g.abort(p.below(4))
    else if (op === 4) {
      // A port close drops every message, a half-written one included: what was written of it is gone with the opener.
      if (p.bool()) g.discardPartials("tunnel-lost", "fuzz")
      else (g.discardAll("port-closed", "fuzz"), partial.clear())
    }
    else {
      for (let b = g.nextBatch(1 + p.u16()); b !== undefined; b = g.nextBatch(4096)) {
        out.push(b.bytes.slice())
        const parts = partial.get(b.port) ?? []
        parts.push(b.bytes.slice())
        partial.set(b.port, parts)
        if (b.last) {
          if (!lawless) check(sent.has(`${b.port}:${fnv(concat(parts))}`), `the bridge wrote a port-${b.port} message the relay never sent whole`)
          f.add(lawless ? "written:lawless" : "written:checked")
          partial.delete(b.port)
        }
        g.written(b)
        if (p.below(4) === 0) break
      }
    }
    check(g.held <= LIMITS.bufferBytes + 2 * 70_000, `the bridge holds ${g.held} guest-bound bytes`)
    const w = g.wrotePos
    check(w >= lastWrote && w <= g.recvPos, `wrote ${w} after ${lastWrote} (received up to ${g.recvPos})`)
    lastWrote = w
  }
  // Everything the chardev received parses as whole messages for the agent: no torn or invalid chunk ever written.
  const r = referenceParse(concat(out), { maxChunk: 2048, maxMessage: 0xffff_ffff, ports: [1, 2] })
  check(r.errorChunkAt === undefined, `the chardev stream breaks the agent's framing: ${r.events.at(-1)}`)
  for (const d of new Set(discards)) f.add(`discard:${d}`)
}

export const bridgeGuestTarget: FuzzTarget = {
  name: "bridge-guest",
  description: "bridge GuestAssembler under hostile relay writes: only whole, sent, well-chunked messages reach the chardev",
  maxInputBytes: 8192,
  covers: ["src/bridge/guest-assembler.ts", "src/bridge/part-cursor.ts"],
  seeds: () => [],
  generate: (r) => {
    const w = new ProgramWriter()
    for (let i = r.range(2, 30); i > 0; i--) {
      const op = r.chance(0.6) ? 0 : r.int(6)
      w.u8(op)
      if (op <= 2) w.u8(r.chance(0.9) ? r.int(2) : r.int(6)).u32(r.u32()).u8(r.int(8)).u8(r.int(3)).u8(r.chance(0.85) ? 0 : r.int(5)).u8(r.int(16))
      else w.u8(r.int(4)).u16(r.u32()).u8(r.int(4))
    }
    return w.finish()
  },
  run: guestRun,
}

const inboxRun = (input: Uint8Array, f: Features): void => {
  const p = new Provider(input)
  let granted = 0
  const inbox = new Inbox(4096, 8192, (n) => (granted += n))
  inbox.linkOpened()
  // The link contract as the SDK reads it: a msg for a seq already delivered or open is a replayed duplicate.
  const sizes = new Map<number, number>()
  const open = new Set<number>()
  let delivered = -1
  for (let i = 0; i < 64 && !p.done; i++) {
    const seq = p.below(6)
    const kind = p.below(3)
    const data = new Uint8Array(p.below(3) === 0 ? p.u16() % 6000 : p.below(64))
    const frame =
      kind === 0
        ? { t: "msg" as const, seq, type: 1 + p.below(16), size: p.below(2) === 0 ? data.length : p.u16(), data, end: p.bool() }
        : kind === 1
          ? { t: "more" as const, seq, data, end: p.bool() }
          : { t: "abort" as const, seq, reason: "resend" as const }
    if (frame.t === "msg" && seq > delivered && !open.has(seq)) sizes.set(seq, frame.size)
    if (frame.t === "msg" && !frame.end && seq > delivered) open.add(seq)
    if (frame.t !== "msg" && (frame.t === "abort" || frame.end)) open.delete(seq)
    const r = inbox.push(frame)
    f.edge(`${frame.t}:${r?._tag ?? "none"}`)
    if (r?._tag === "Message") {
      check(r.message.data.length === sizes.get(r.message.seq), `the SDK surfaced seq ${r.message.seq} with ${r.message.data.length} bytes, declared ${sizes.get(r.message.seq)}`)
      check(r.message.data.length <= 4096, "the SDK surfaced a message over its maxMessageBytes")
      delivered = Math.max(delivered, r.message.seq)
      open.delete(r.message.seq)
    }
    if (r?._tag === "Protocol" || r?._tag === "Dropped") open.delete(seq)
  }
  check(granted >= 8192, "the SDK never granted its window")
}

export const clientInboxTarget: FuzzTarget = {
  name: "client-inbox",
  description: "SDK Inbox under hostile msg/more/abort frames: only messages of exactly their declared size surface",
  maxInputBytes: 4096,
  covers: ["src/client/inbox.ts"],
  seeds: () => [],
  generate: (r) => r.bytes(r.range(8, 400)),
  run: inboxRun,
}
