// Agent → client routing: each port-1 agent message gets a seq and goes, fragment by fragment, to the clients allowed
// to see it (policy and role); ANNOUNCE_CAPABILITIES is collected whole, cached, edited by policy and answered here.
import type { ClientId } from "./types.ts"
import type { StreamSink } from "../protocol/stream-parser.ts"
import type { MessageHeader } from "../protocol/header.ts"
import { FileXferResult, MessageType, Port } from "../protocol/constants.ts"
import { u32At } from "../protocol/wire.ts"
import { xferEnded } from "./seats.ts"
import { editAgentCaps } from "../protocol/caps.ts"
import { decodeAnnounceCapabilities, encodeAnnounceCapabilities } from "../protocol/codec-misc.ts"
import type { AgentMsg, ClientSide, SessionState } from "./state.ts"
import { endMessage, enqueue, withdraw } from "./client-queue.ts"
import { log, metric } from "./emit.ts"
import { isClipboardType, isFileXferType, policyAllows } from "./validate.ts"
import { agentAnnounced } from "./agent-link.ts"
import type { NoticeCode } from "../link/types.ts"

const ANNOUNCE_MAX = 4 + 4 * 64

/** Hands out agent-message seqs; the persisted lease keeps them increasing across restarts. */
export const allocSeq = (s: SessionState): number => {
  const seq = s.nextSeq++
  if (s.nextSeq >= s.seqLease) {
    s.seqLease = s.nextSeq + 4096
    s.persistDirty = true
  }
  return seq
}

/** Whether client `c` may see agent messages of `type` (viewers: no file transfer, clipboard only by policy). */
export const mayReceive = (s: SessionState, c: ClientSide, type: number): boolean => {
  if (type === MessageType.AnnounceCapabilities) return c.role === "controller"
  if (isFileXferType(type)) return c.role === "controller"
  if (isClipboardType(type)) return c.role === "controller" || s.policy.viewersSeeClipboard
  return true
}

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

/**
 * Abandons every agent message in progress: clients that got part of one are told with `abort`, the rest of its bytes
 * will be consumed and dropped. `reset` also forgets them (the stream itself restarts).
 */
export const abandonAgentMessages = (s: SessionState, reason: NoticeCode, reset: boolean): void => {
  for (const [port, m] of s.stream.msgs) {
    if (m.drop === null) for (const id of m.to) {
      const c = s.clients.get(id)
      if (c !== undefined) withdraw(s, c, m.seq, reason)
    }
    if (reset) s.stream.msgs.delete(port)
    else s.stream.msgs.set(port, { ...m, drop: reason, to: new Set(), collect: null })
  }
}

/** Takes client `c` out of agent messages in progress that it may no longer see (role or policy change). */
export const recheckRecipients = (s: SessionState, c: ClientSide, reason: NoticeCode): void => {
  for (const m of s.stream.msgs.values()) {
    if (m.drop !== null || !m.to.has(c.id)) continue
    if (mayReceive(s, c, m.type) && policyAllows(s.policy, m.type)) continue
    m.to.delete(c.id)
    withdraw(s, c, m.seq, reason)
  }
}

/** Sends the agent's caps as seen by clients (edited by policy) to one client or all. */
export const editedCaps = (s: SessionState): number[] | null => (s.rawCaps === null ? null : editAgentCaps(s.rawCaps, s.policy))

export const sendAnnounceTo = (s: SessionState, c: ClientSide, request: boolean, seq: number): void => {
  const caps = editedCaps(s) ?? []
  const enc = encodeAnnounceCapabilities({ _tag: "AnnounceCapabilities", request, caps })
  if (enc._tag !== "Ok") return
  enqueue(s, c, { frame: { t: "msg", seq, type: MessageType.AnnounceCapabilities, size: enc.value.length, data: enc.value, end: true }, bytes: enc.value.length, seq })
}

export { decodeAnnounceCapabilities }
