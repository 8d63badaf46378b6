// The session fuzz program: each op (one byte, then its arguments from the Provider) is one thing a bridge, an agent, a
// console, the clock, an operator or the platform does to a VM session, valid or hostile. The same op set serves the
// three session targets; they differ only in which ops their generators favour.
import { encodeChunkHeader, encodeMessageHeader } from "../../../../src/protocol/header.ts"
import { defaultPolicy, type Policy, type Role } from "../../../../src/link/types.ts"
import { randomBridgeToRelay, randomClientToRelay } from "../gen-frames.ts"
import { concat, randomPayload } from "../gen-messages.ts"
import { INTERESTING_U32 } from "../mutate.ts"
import { Provider, ProgramWriter } from "../provider.ts"
import { fnv } from "../reference.ts"
import { Rng } from "../rng.ts"
import type { ClientView } from "./client-view.ts"
import type { SessionWorld } from "./world.ts"
import { SPICE_VDAGENT_CAPS } from "../../../../src/protocol/known.ts"

export const AGENT_CAPS = [SPICE_VDAGENT_CAPS]
export const CLIENT_CAPS = [0x000355f7]

export const Op = {
  Hello: 0, Drop: 1, AgentMsg: 2, AgentGarbage: 3, AgentPartial: 4, DataBogus: 5, Chardev: 6, Port: 7, Wrote: 8,
  BridgeRaw: 9, BridgeReject: 10, Join: 11, Leave: 12, ClientMsg: 13, ClientMore: 14, ClientAbort: 15, ClientRaw: 16,
  ClientReject: 17, Credit: 18, Control: 19, Timer: 20, Policy: 21, Evict: 22, Announce: 23, Resume: 24,
} as const
export const OP_COUNT = 25

/** A console's message being sent in fragments across ops. */
interface Outgoing {
  readonly id: number
  readonly payload: Uint8Array
  sent: number
}
const outgoing = new WeakMap<ClientView, Outgoing>()

const layoutOf = (w: SessionWorld) => {
  const caps = w.state.rawCaps ?? []
  return { selection: ((caps[0] ?? 0) & (1 << 6)) !== 0, grabSerial: ((caps[0] ?? 0) & (1 << 17)) !== 0, detailedErrors: true, maxMonitors: 16 }
}

const pickClient = (w: SessionWorld, p: Provider): ClientView | undefined => {
  const live = w.live()
  return live.length === 0 ? undefined : live[p.below(live.length)]
}

/** One agent message as the agent frames it (one chunk) or chunked, cut into 1..4 bridge data frames. */
const agentMessage = (w: SessionWorld, p: Provider, cut: boolean): void => {
  const r = new Rng(p.u32())
  const port = r.chance(0.85) ? 1 : 2
  const { type, payload } = randomPayload(r, { selection: true, grabSerial: true, detailedErrors: true }, r.chance(0.1) ? 40_000 : 300)
  const body = concat([encodeMessageHeader({ type, size: payload.length }), payload])
  const chunked = r.chance(0.3)
  const bytes = chunked ? chunkAt(port, body, r.range(20, 2048)) : concat([encodeChunkHeader({ port, size: body.length }), body])
  if (port === 1 && !cut) w.sentToAgent.push({ epoch: w.epoch, type, hash: fnv(payload) })
  const end = cut ? r.int(bytes.length) : bytes.length
  for (let at = 0; at < end; ) {
    const n = Math.min(end - at, r.chance(0.5) ? end : r.range(1, 3000))
    w.agentSends(bytes.subarray(at, at + n), cut)
    at += n
  }
}

const chunkAt = (port: number, body: Uint8Array, size: number): Uint8Array => {
  const parts: Uint8Array[] = []
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size)
    parts.push(encodeChunkHeader({ port, size: piece.length }), piece)
  }
  return concat(parts)
}

export const announce = (w: SessionWorld, request: boolean): void => {
  const payload = Uint8Array.of(request ? 1 : 0, 0, 0, 0, 0xe7, 0x8d, 0x03, 0x00)
  w.agentSends(concat([encodeChunkHeader({ port: 1, size: 28 }), encodeMessageHeader({ type: 6, size: 8 }), payload]), false)
}

/** One of `choices`, picked by the next argument byte; only the chosen one reads further bytes. */
const choose = <T>(p: Provider, choices: ReadonlyArray<() => T>): T => choices[p.below(choices.length)]!()

const pickEpoch = (w: SessionWorld, p: Provider): number => choose(p, [() => w.epoch, () => w.epoch + 1, () => w.epoch - 1, () => p.u32()])

const randomPolicy = (p: Provider): Policy => ({
  copyPaste: p.bool(),
  fileTransfer: p.bool(),
  maxClipboardBytes: p.bool() ? defaultPolicy.maxClipboardBytes : INTERESTING_U32[p.below(INTERESTING_U32.length)]!,
  maxMessageBytes: p.bool() ? defaultPolicy.maxMessageBytes : INTERESTING_U32[p.below(INTERESTING_U32.length)]!,
  viewersSeeClipboard: p.bool(),
})

/** A console starts a valid message (for the agent's layout) and sends 0..all of its fragments now. */
const clientMessage = (w: SessionWorld, v: ClientView, p: Provider): void => {
  if (outgoing.has(v)) return clientMore(w, v, p)
  const r = new Rng(p.u32())
  const { type, payload } = randomPayload(r, layoutOf(w), r.chance(0.1) ? 80_000 : 400)
  const id = v.nextId++
  const first = Math.min(payload.length, r.chance(0.6) ? payload.length : r.int(payload.length + 1))
  // Booked before it is sent: the relay may answer within the same step.
  w.sentByClients.push({ controller: v.role === "controller", type, hash: fnv(payload) })
  v.unanswered.set(id, { type, payload })
  if (first < payload.length) outgoing.set(v, { id, payload, sent: first })
  w.clientSends(v, { t: "msg", id, type, size: payload.length, data: payload.slice(0, first), end: first === payload.length })
}

const clientMore = (w: SessionWorld, v: ClientView, p: Provider): void => {
  const o = outgoing.get(v)
  if (o === undefined) return
  const n = Math.min(o.payload.length - o.sent, p.bool() ? o.payload.length : p.u16())
  const end = o.sent + n === o.payload.length
  w.clientSends(v, { t: "more", id: o.id, data: o.payload.slice(o.sent, o.sent + n), end })
  o.sent += n
  if (end) outgoing.delete(v)
}

export const clientAbort = (w: SessionWorld, v: ClientView): void => {
  const o = outgoing.get(v)
  if (o === undefined) return
  outgoing.delete(v)
  v.pending.delete(o.id)
  w.clientSends(v, { t: "abort", id: o.id })
}

/** The SDK's behaviour: it grants back the credit of what it consumed. */
export const grantCredit = (w: SessionWorld, v: ClientView): void => {
  if (v.consumed === 0 || v.closed) return
  const bytes = v.consumed
  v.consumed = 0
  w.clientSends(v, { t: "credit", bytes })
}

/** Each op is one byte and 8 argument bytes; hostile byte blobs follow as length-prefixed bytes. */
export const ARG_BYTES = 8

export const runOp = (w: SessionWorld, main: Provider): void => {
  const op = main.u8() % OP_COUNT
  const p = new Provider(main.take(ARG_BYTES))
  w.f.edge(`op${op}`)
  switch (op) {
    case Op.Hello: {
      const epoch = pickEpoch(w, p)
      const wrote = choose<number | undefined>(p, [() => undefined, () => 0, () => p.u32()])
      return w.bridgeHello(epoch, p.below(4) !== 0, (["open", "closed", "unknown"] as const)[p.below(3)]!, wrote)
    }
    case Op.Drop: return w.bridgeDrop()
    case Op.AgentMsg: return agentMessage(w, p, false)
    case Op.AgentGarbage: return w.agentSends(main.bytes(), true)
    case Op.AgentPartial: return agentMessage(w, p, true)
    case Op.DataBogus: {
      const pos = choose(p, [() => w.agentPos - 1, () => w.agentPos + 1, () => w.acked, () => 0, () => p.u32(), () => 2 ** 53])
      w.taint()
      return w.bridgeFrame({ t: "data", epoch: pickEpoch(w, p), pos, bytes: main.bytes() })
    }
    case Op.Chardev: {
      const up = p.bool()
      const epoch = pickEpoch(w, p)
      if (up && epoch !== w.epoch && w.bridgeUp) w.newEpochFromChardev(epoch)
      return w.bridgeFrame({ t: "chardev", epoch, up })
    }
    case Op.Port: return w.bridgeFrame({ t: "port", epoch: w.epoch, open: p.bool() })
    case Op.Wrote: {
      const g = w.guest.wpos
      const pos = choose(p, [() => g, () => Math.floor(g / 2), () => g + 1, () => p.u32()])
      return w.bridgeFrame({ t: "wrote", epoch: w.epoch, pos })
    }
    case Op.BridgeRaw: {
      w.taint()
      const f = randomBridgeToRelay(new Rng(p.u32()))
      if (f.t === "chardev" && f.up && f.epoch !== w.epoch && w.bridgeUp) w.newEpochFromChardev(f.epoch)
      return w.bridgeFrame(f)
    }
    case Op.BridgeReject:
      if (!w.bridgeUp) return
      return w.feed({ _tag: "FrameRejected", now: w.now, from: "bridge", detail: "fuzz: undecodable" })
    case Op.Join: {
      const roles: Role[] = ["controller", "viewer"]
      return void w.join(roles[p.below(2)]!, roles[p.below(2)]!, p.bool() ? CLIENT_CAPS : [p.u32()])
    }
    case Op.Leave: {
      const v = pickClient(w, p)
      return v && w.leave(v, p.bool() ? "closed" : "error")
    }
    case Op.Resume: {
      const v = pickClient(w, p)
      if (v === undefined) return
      outgoing.delete(v)
      return void w.resume(v, choose(p, [() => 1, () => 3_000, () => 30_000]), p.below(8) === 0)
    }
    case Op.ClientMsg: {
      const v = pickClient(w, p)
      return v && clientMessage(w, v, p)
    }
    case Op.ClientMore: {
      const v = pickClient(w, p)
      return v && clientMore(w, v, p)
    }
    case Op.ClientAbort: {
      const v = pickClient(w, p)
      return v && clientAbort(w, v)
    }
    case Op.ClientRaw: {
      const v = pickClient(w, p)
      if (v === undefined) return
      const f = randomClientToRelay(new Rng(p.u32()))
      if (f.t === "msg" || f.t === "more" || f.t === "abort") outgoing.delete(v)
      if (f.t === "msg") v.unanswered.delete(f.id) // an id reused by a hostile frame: the SDK-style resend forgets it
      w.clientTainted = true
      return w.clientSends(v, f)
    }
    case Op.ClientReject: {
      const v = pickClient(w, p)
      if (v === undefined) return
      outgoing.delete(v)
      return w.feed({ _tag: "FrameRejected", now: w.now, from: { client: v.id }, detail: "fuzz: undecodable" })
    }
    case Op.Credit: {
      const v = pickClient(w, p)
      return v && grantCredit(w, v)
    }
    case Op.Control: {
      const v = pickClient(w, p)
      if (v === undefined) return
      const k = p.below(3)
      return w.clientSends(v, k === 0 ? { t: "control" } : k === 1 ? { t: "ping", n: p.u16() } : { t: "mouse", x: p.u16(), y: p.u16(), buttons: p.u8(), display: p.u8() % 4 })
    }
    case Op.Timer:
      w.tick([1, 500, 5_000, 11_000, 60_000][p.below(5)]!)
      return w.feed({ _tag: "TimerFired", now: w.now })
    case Op.Policy: return w.feed({ _tag: "PolicyChanged", now: w.now, policy: randomPolicy(p) })
    case Op.Evict: return w.evict()
    case Op.Announce: return announce(w, p.bool())
  }
}

/** Generators write programs in the op encoding; `weights[op]` is how often each op is chosen. */
export const writeProgram = (r: Rng, weights: ReadonlyArray<number>, length: number): Uint8Array => {
  const total = weights.reduce((a, b) => a + b, 0)
  const w = new ProgramWriter()
  // Most programs start with a working session: bridge up, agent announced, a controller.
  const record = (op: number, args: number[]): void => {
    w.u8(op)
    for (let k = 0; k < ARG_BYTES; k++) w.u8(args[k] ?? (r.chance(0.5) ? 0 : r.u32()))
    if (op === Op.AgentGarbage || op === Op.DataBogus) w.bytes(r.bytes(r.size(200)))
  }
  if (r.chance(0.8)) {
    record(Op.Hello, [0, 1, 0, 0])
    record(Op.Announce, [1])
    record(Op.Join, [0, 0, 1])
  }
  for (let i = 0; i < length; i++) {
    let x = r.int(total)
    let op = 0
    while (x >= weights[op]!) x -= weights[op++]!
    record(op, [])
  }
  return w.finish()
}
