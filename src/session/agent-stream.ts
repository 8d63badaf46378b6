// The agent byte stream from the bridge: positions (duplicates skipped, gaps resynchronised), the StreamParser, a
// chunk tracker beside it so that a mid-message position can be persisted exactly (AgentResume), garbage →
// resynchronisation by scanning for the next plausible header, and the candidate acknowledgement points.
import { concatBytes } from "../protocol/bytes.ts"
import { CHUNK_HEADER_SIZE, MESSAGE_HEADER_SIZE } from "../protocol/constants.ts"
import { chunkPortAt, chunkSizeAt, encodeChunkHeader, encodeMessageHeader } from "../protocol/header.ts"
import { findResync } from "../protocol/resync.ts"
import { StreamParser } from "../protocol/stream-parser.ts"
import type { Limits } from "./limits.ts"
import type { AgentStream, SessionState } from "./state.ts"
import type { AgentResume } from "./types.ts"
import { abandonAgentMessages } from "./agent-msgs.ts"
import { agentSink } from "./agent-route.ts"
import { log, metric } from "./emit.ts"

const MAX_SAFE_POINTS = 1024

const parserOptions = (limits: Limits) => ({ maxChunkSize: limits.agentMaxMessage + MESSAGE_HEADER_SIZE, maxMessageSize: limits.agentMaxMessage })

export const newAgentStream = (limits: Limits, pos: number, mode: "parse" | "scan"): AgentStream => ({
  pos,
  parser: new StreamParser(parserOptions(limits)),
  chunkFill: 0,
  chunkScratch: new Uint8Array(CHUNK_HEADER_SIZE),
  chunkPort: 0,
  chunkLeft: 0,
  ports: new Map(),
  mode,
  tail: new Uint8Array(0),
  safe: [],
  acked: pos,
  ackedResume: mode === "scan" ? { _tag: "Scan" } : null,
  framePos: pos,
  cur: null,
  parserBase: pos,
  resuming: false,
  msgs: new Map(),
})

/** Forget the parser state (a new stream, or garbage): continue at `pos` in `mode`. Messages must be abandoned first. */
export const restartStream = (s: SessionState, pos: number, mode: "parse" | "scan"): void => {
  const a = s.stream
  a.parser = new StreamParser(parserOptions(s.limits))
  a.parserBase = pos
  a.chunkFill = 0
  a.chunkLeft = 0
  a.ports.clear()
  a.msgs.clear()
  a.mode = mode
  a.tail = new Uint8Array(0)
  a.pos = pos
}

/** Mirrors the parser's chunk framing (headers only) so a position inside a chunk can be described. */
const track = (a: AgentStream, b: Uint8Array): void => {
  let i = 0
  while (i < b.length) {
    if (a.chunkLeft === 0) {
      while (a.chunkFill < CHUNK_HEADER_SIZE && i < b.length) a.chunkScratch[a.chunkFill++] = b[i++]!
      if (a.chunkFill < CHUNK_HEADER_SIZE) return
      a.chunkPort = chunkPortAt(a.chunkScratch, 0)
      a.chunkLeft = chunkSizeAt(a.chunkScratch, 0)
      a.chunkFill = 0
      continue
    }
    const k = Math.min(a.chunkLeft, b.length - i)
    i += k
    a.chunkLeft -= k
  }
}

/** Where parsing could resume exactly at the current position: null at a boundary, undefined if it cannot be said. */
const resumeHere = (a: AgentStream): AgentResume | null | undefined => {
  if (a.mode === "scan") return { _tag: "Scan" }
  if (a.parser.atBoundary) return null
  if (a.chunkFill !== 0) return undefined
  for (const p of a.parser.partialPorts()) if (!a.ports.has(p)) return undefined
  return {
    _tag: "Mid",
    chunk: a.chunkLeft > 0 ? { port: a.chunkPort, left: a.chunkLeft } : null,
    ports: [...a.ports].map(([port, m]) => ({ port, type: m.type, left: m.left })),
  }
}

const addSafePoint = (a: AgentStream): void => {
  const resume = resumeHere(a)
  if (resume === undefined) return
  const pos = a.mode === "scan" ? a.pos - a.tail.length : a.pos
  const last = a.safe[a.safe.length - 1]
  if (pos <= a.acked || (last !== undefined && last.pos >= pos)) return
  // Coarser acknowledgement granularity under a flood of tiny frames; correctness does not depend on density.
  if (a.safe.length >= MAX_SAFE_POINTS) a.safe[a.safe.length - 1] = { pos, resume }
  else a.safe.push({ pos, resume })
}

/**
 * Feeds the bytes of one bridge `data` frame that lie at `pos` (already trimmed to start at `s.stream.pos`).
 */
export const feedAgent = (s: SessionState, bytes: Uint8Array): void => {
  const a = s.stream
  a.framePos = a.pos
  let rest = bytes
  const sink = agentSink(s)
  while (rest.length > 0) {
    if (a.mode === "scan") {
      const combined = a.tail.length === 0 ? rest : concatBytes([a.tail, rest])
      const start = a.pos - a.tail.length
      const r = findResync(combined, 0, parserOptions(s.limits))
      if (r._tag === "Need") {
        a.tail = combined.slice(r.from)
        a.pos += rest.length
        break
      }
      metric(s, "vdrelay_agent_resyncs_total")
      log(s, "info", "agent stream resynchronised", { at: start + r.value })
      restartStream(s, start + r.value, "parse")
      rest = combined.subarray(r.value)
      continue
    }
    a.cur = { buf: rest, pos: a.pos }
    const n = a.parser.push(rest, sink)
    a.cur = null
    const err = a.parser.error
    if (err === undefined) {
      track(a, rest)
      a.pos += rest.length
      break
    }
    // Garbage: what was in progress is lost; resynchronise from just after where the bad chunk began.
    metric(s, "vdrelay_agent_garbage_total", { reason: err.reason })
    log(s, "warn", "agent stream garbage", { reason: err.reason, detail: err.detail, at: a.parserBase + err.at })
    abandonAgentMessages(s, "invalid-message", true)
    const badAt = a.parserBase + err.at
    const skip = Math.min(rest.length, n > 0 ? n + 1 : badAt >= a.pos ? 1 : 0)
    restartStream(s, a.pos + skip, "scan")
    rest = rest.subarray(skip)
  }
  addSafePoint(a)
}

/**
 * Rebuilds the parser at a persisted mid-message position by pushing a synthetic prefix that puts it in the same
 * state: one header per port with a message in progress (its remaining size), the current chunk last. The messages
 * so resumed are consumed and dropped (their beginning was already delivered, or is lost).
 */
export const resumeStream = (s: SessionState, pos: number, resume: AgentResume | null): void => {
  const a = s.stream
  a.acked = pos
  a.ackedResume = resume
  a.safe = []
  if (resume === null) return restartStream(s, pos, "parse")
  if (resume._tag === "Scan") return restartStream(s, pos, "scan")
  restartStream(s, pos, "parse")
  const parts: Uint8Array[] = []
  const chunkPort = resume.chunk?.port
  const ports = [...resume.ports].sort((x, y) => (x.port === chunkPort ? 1 : 0) - (y.port === chunkPort ? 1 : 0))
  for (const p of ports) {
    const chunkSize = p.port === chunkPort ? MESSAGE_HEADER_SIZE + resume.chunk!.left : MESSAGE_HEADER_SIZE
    parts.push(encodeChunkHeader({ port: p.port, size: chunkSize }), encodeMessageHeader({ type: p.type, size: p.left }))
  }
  if (resume.chunk !== null && !resume.ports.some((p) => p.port === chunkPort))
    parts.push(encodeChunkHeader({ port: resume.chunk.port, size: resume.chunk.left }))
  const prefix = concatBytes(parts)
  a.resuming = true
  a.parser.push(prefix, agentSink(s))
  a.resuming = false
  a.parserBase = pos - prefix.length
  if (a.parser.error !== undefined) return restartStream(s, pos, "scan")
  a.chunkPort = resume.chunk?.port ?? 0
  a.chunkLeft = resume.chunk?.left ?? 0
}
