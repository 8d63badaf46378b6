// Agent → client routing: each port-1 agent message gets a seq and goes, fragment by fragment, to the clients allowed
// to see it (policy and role); the agent's ANNOUNCE_CAPABILITIES is collected whole for agent-announce.ts.
import type { StreamSink } from "../protocol/stream-parser.ts"
import type { MessageHeader } from "../protocol/header.ts"
import { FileXferResult, MessageType, Port } from "../protocol/constants.ts"
import { u32At } from "../protocol/wire.ts"
import type { AgentMsg, SessionState } from "./state.ts"
import type { ClientId } from "./types.ts"
import { agentAnnounced } from "./agent-announce.ts"
import { mayReceive } from "./agent-msgs.ts"
import { endMessage, enqueue } from "./client-queue.ts"
import { log, metric } from "./emit.ts"
import { allocSeq } from "./seq.ts"
import { policyAllows } from "./validate.ts"
import { xferEnded } from "./xfers.ts"

const ANNOUNCE_MAX = 4 + 4 * 64

const dropReason = (s: SessionState, port: number, h: MessageHeader): string | null => {
  if (port !== Port.Client) return "server-port"
  if (h.type < 1 || h.type >= MessageType.GraphicsDeviceInfo + 1) return "unknown-type"
  if (!policyAllows(s.policy, h.type)) return "policy"
  if (h.size > s.policy.maxMessageBytes) return "too-large"
  if (h.type === MessageType.Clipboard && h.size > s.policy.maxClipboardBytes + 8) return "too-large"
  if (h.type === MessageType.AnnounceCapabilities && h.size > ANNOUNCE_MAX) return "invalid"
  return null
}

/** Stream position of a view handed out by the parser for the frame being fed, if it is a view of that frame. */
const positionOf = (s: SessionState, bytes: Uint8Array): number | undefined => {
  const cur = s.stream.cur
  if (cur === null || bytes.buffer !== cur.buf.buffer) return undefined
  const off = bytes.byteOffset - cur.buf.byteOffset
  return off >= 0 && off <= cur.buf.length ? cur.pos + off : undefined
}

const begin = (s: SessionState, port: number, h: MessageHeader): void => {
  const drop = s.stream.resuming ? "resumed" : dropReason(s, port, h)
  const to = new Set<ClientId>()
  if (drop === null) for (const c of s.clients.values()) if (mayReceive(s, c, h.type)) to.add(c.id)
  const collect = drop === null && h.type === MessageType.AnnounceCapabilities ? new Uint8Array(h.size) : null
  const head = drop === null && h.type === MessageType.FileXferStatus && h.size >= 8 ? new Uint8Array(8) : null
  const routed = drop === null && (to.size > 0 || collect !== null)
  if (drop !== null && drop !== "resumed") {
    metric(s, "vdrelay_agent_drops_total", { reason: drop })
    log(s, "info", "agent message dropped", { reason: drop, type: h.type, size: h.size, port })
  }
  const m: AgentMsg = { type: h.type, size: h.size, seq: routed ? allocSeq(s) : -1, to, started: new Set(), collect, head, got: 0, drop: routed ? null : drop ?? "no-recipient", placed: false }
  s.stream.msgs.set(port, m)
}

const piece = (s: SessionState, port: number, bytes: Uint8Array): void => {
  const m = s.stream.msgs.get(port)
  if (m === undefined || m.drop !== null) return
  if (!m.placed) {
    m.placed = true
    // A message replayed after a restart that a client already has whole is not sent to it again.
    const at = positionOf(s, bytes)
    if (at !== undefined)
      for (const id of m.to) {
        const c = s.clients.get(id)!
        if (c.lastEpoch === s.epoch && at < c.lastPos) m.to.delete(id)
      }
  }
  if (m.collect !== null) {
    m.collect.set(bytes, m.got)
    m.got += bytes.length
    return
  }
  if (m.head !== null && m.got < 8) m.head.set(bytes.subarray(0, 8 - m.got), m.got)
  m.got += bytes.length
  if (bytes.length === 0 || m.to.size === 0) return
  const copy = bytes.slice()
  const step = s.limits.clientFragmentBytes
  for (const id of m.to) {
    const c = s.clients.get(id)!
    for (let o = 0; o < copy.length; o += step) {
      const data = copy.subarray(o, Math.min(copy.length, o + step))
      const first = !m.started.has(id)
      m.started.add(id)
      const frame = first
        ? { t: "msg" as const, seq: m.seq, type: m.type, size: m.size, data, end: false }
        : { t: "more" as const, seq: m.seq, data, end: false }
      enqueue(s, c, { frame, bytes: data.length, seq: m.seq, framePos: s.stream.framePos })
    }
  }
}

const finish = (s: SessionState, port: number, endPos: number | undefined): void => {
  const m = s.stream.msgs.get(port)
  s.stream.msgs.delete(port)
  if (m === undefined || m.drop !== null) return
  if (m.collect !== null) return agentAnnounced(s, m.collect, m.seq)
  // A final status ends the transfer on the agent: it no longer needs cancelling if its console's link is lost.
  if (m.head !== null && m.got >= 8 && u32At(m.head, 4) !== FileXferResult.CanSendData) xferEnded(s, u32At(m.head, 0))
  for (const id of m.to) {
    const c = s.clients.get(id)!
    if (m.started.has(id)) endMessage(s, c, m.seq, endPos, s.stream.framePos)
    else {
      const item = { frame: { t: "msg" as const, seq: m.seq, type: m.type, size: m.size, data: new Uint8Array(0), end: true }, bytes: 0, seq: m.seq, framePos: s.stream.framePos, msgEnd: endPos }
      enqueue(s, c, item)
    }
  }
}

/** The parser's sink for the agent stream; `ports` (what AgentResume needs) is kept up to date here. */
export const agentSink = (s: SessionState): StreamSink => {
  let lastEnd: number | undefined
  return {
    message(port, header, body) {
      begin(s, port, header)
      piece(s, port, body)
      const at = positionOf(s, body)
      finish(s, port, at === undefined ? undefined : at + body.length)
    },
    start(port, header) {
      s.stream.ports.set(port, { type: header.type, left: header.size })
      begin(s, port, header)
    },
    data(port, bytes) {
      const p = s.stream.ports.get(port)
      if (p !== undefined) p.left -= bytes.length
      piece(s, port, bytes)
      const at = positionOf(s, bytes)
      lastEnd = at === undefined ? undefined : at + bytes.length
    },
    end(port) {
      s.stream.ports.delete(port)
      finish(s, port, lastEnd)
    },
    error() {
      // Reported through the parser's `error` after push returns (agent-stream.ts).
    },
  }
}
