// Figure 7: the same byte stream through the classic console relay, Debian's websockify (WebSocket ⇄ socket, no
// parsing at all), and through vdrelay (SDK → Worker → VmSession DO → bridge), both ending at a probe agent's chardev
// socket: 10 MiB each way and the latency of a 13-byte MOUSE_STATE. Same client WebSocket library on both sides.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import WebSocket from "ws"
import type { Session, WebSocketConstructor } from "../src/client/index.ts"
import { encodeChunkedMessage } from "../src/protocol/chunker.ts"
import { ClipboardType, MessageType, Port } from "../src/protocol/constants.ts"
import type { Emit, Want } from "./run.ts"
import { type Arrival, ProbeAgent, u32At } from "./lib/probe-agent.ts"
import { startProbeRig } from "./lib/stack.ts"
import { WARMUP, alternate, longRuns, median, mibps, now, round, summarize } from "./lib/stats.ts"
import { type Websockify, startWebsockify } from "./lib/websockify.ts"

const MiB = 1024 * 1024
const FRAME = 256 * 1024
const RUNTIME = "vdrelay: raw Miniflare/workerd + bridge process; both clients Node 22 ws"

const clipboardPayload = (bytes: number): Uint8Array => {
  const p = new Uint8Array(8 + bytes).fill(0x63)
  new DataView(p.buffer).setUint32(0, 0, true)
  new DataView(p.buffer).setUint32(4, ClipboardType.Utf8Text, true)
  return p
}

const mouseWire = (seq: number): Uint8Array => {
  const body = new Uint8Array(13)
  new DataView(body.buffer).setUint32(0, seq, true)
  return encodeChunkedMessage(Port.Server, MessageType.MouseState, body)
}

const isMouse = (seq: number) => (a: Arrival): boolean => a.type === MessageType.MouseState && u32At(a.head, 0) === seq
const isBig = (size: number) => (a: Arrival): boolean => a.type === MessageType.Clipboard && a.size === size

const openWs = (url: string): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["binary"], { perMessageDeflate: false })
    ws.binaryType = "nodebuffer"
    ws.once("open", () => resolve(ws)).once("error", reject)
  })

export default async (emit: Emit, want: Want): Promise<void> => {
  const runs = longRuns() ? 9 : 5
  const dir = mkdtempSync(join(tmpdir(), "vdr-bench-wsf-"))
  const probeW = await ProbeAgent.listen(join(dir, "websockify.sock"), { announce: false })
  let websockify: Websockify | undefined
  let ws: WebSocket | undefined
  const rig = await startProbeRig(1, { prefix: "base", client: { WebSocket: WebSocket as unknown as WebSocketConstructor } })
  try {
    websockify = await startWebsockify(probeW.path)
    ws = await openWs(websockify.url)
    await probeW.waitForHost()
    const [probeR, s] = [rig.probes[0]!, rig.sessions[0]!]
    probeR.record = probeW.record = false
    const payload = clipboardPayload(10 * MiB)
    const wire = encodeChunkedMessage(Port.Client, MessageType.Clipboard, payload)
    const sock = ws
    if (want("to-guest")) await toGuest(emit, runs, s, probeR, sock, probeW, payload, wire, websockify.version)
    if (want("from-guest")) await fromGuest(emit, runs, s, probeR, sock, probeW, payload, websockify.version)
    if (want("mouse")) await mouse(emit, s, probeR, sock, probeW, websockify.version)
  } finally {
    ws?.close()
    await websockify?.stop()
    await probeW.close()
    await rig.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const toGuest = async (emit: Emit, runs: number, s: Session, probeR: ProbeAgent, ws: WebSocket, probeW: ProbeAgent, payload: Uint8Array, wire: Uint8Array, version: string): Promise<void> => {
  const t = await alternate(
    async () => {
      const arrived = probeR.next(isBig(payload.length), 60_000)
      const t0 = now()
      s.sendMessage({ _tag: "Clipboard", selection: 0, dataType: ClipboardType.Utf8Text, data: payload.subarray(8) }).catch(() => {})
      return (await arrived).at - t0
    },
    async () => {
      const arrived = probeW.next(isBig(payload.length), 60_000)
      const t0 = now()
      for (let at = 0; at < wire.length; at += FRAME) ws.send(wire.subarray(at, at + FRAME))
      return (await arrived).at - t0
    },
    runs,
  )
  const [ours, base] = [median(t.ours), median(t.baseline)]
  emit({ name: `10 MiB client → chardev: vdrelay (${round(ours, 0)} ms) vs websockify ${version} (${round(base, 0)} ms), median of ${runs} after ${WARMUP} warm-up runs each; ${RUNTIME}`, value: round(mibps(payload.length, ours), 1), unit: "MiB/s", baseline: round(mibps(payload.length, base), 1), ratio: round(base / ours, 3) })
  emitCold(emit, "10 MiB client → chardev", t.cold, payload.length, version)
}

/** The first transfer after the stacks started (before any warm-up), one run each: what a relay's first paste costs. */
const emitCold = (emit: Emit, what: string, cold: { ours: number; baseline: number }, bytes: number, version: string): void =>
  emit({ name: `${what}, first transfer after start (cold JITs): vdrelay (${round(cold.ours, 0)} ms) vs websockify ${version} (${round(cold.baseline, 0)} ms), one run each; ${RUNTIME}`, value: round(mibps(bytes, cold.ours), 1), unit: "MiB/s", baseline: round(mibps(bytes, cold.baseline), 1), ratio: round(cold.baseline / cold.ours, 3) })

const fromGuest = async (emit: Emit, runs: number, s: Session, probeR: ProbeAgent, ws: WebSocket, probeW: ProbeAgent, payload: Uint8Array, version: string): Promise<void> => {
  // The agent writes a message as one chunk of any size (spec §11); websockify's client counts the raw stream's bytes.
  const wireLength = 8 + 20 + payload.length
  const t = await alternate(
    async () => {
      const got = new Promise<number>((resolve) => {
        const off = s.on("message", (m) => m.type === MessageType.Clipboard && (off(), resolve(now())))
      })
      const t0 = now()
      probeR.send(MessageType.Clipboard, payload)
      return (await got) - t0
    },
    async () => {
      let n = 0
      const got = new Promise<number>((resolve) => {
        const onData = (b: Buffer): void => {
          n += b.length
          if (n >= wireLength) ws.off("message", onData), resolve(now())
        }
        ws.on("message", onData)
      })
      const t0 = now()
      probeW.send(MessageType.Clipboard, payload)
      return (await got) - t0
    },
    runs,
  )
  const [ours, base] = [median(t.ours), median(t.baseline)]
  emit({ name: `10 MiB chardev → client: vdrelay (${round(ours, 0)} ms, whole message) vs websockify ${version} (${round(base, 0)} ms, raw bytes), median of ${runs} after ${WARMUP} warm-up runs each; ${RUNTIME}`, value: round(mibps(payload.length, ours), 1), unit: "MiB/s", baseline: round(mibps(payload.length, base), 1), ratio: round(base / ours, 3) })
  emitCold(emit, "10 MiB chardev → client", t.cold, payload.length, version)
}

const mouse = async (emit: Emit, s: Session, probeR: ProbeAgent, ws: WebSocket, probeW: ProbeAgent, version: string): Promise<void> => {
  const n = longRuns() ? 3000 : 600
  const ours: number[] = []
  const base: number[] = []
  let seq = 1
  for (let i = 0; i < n + 100; i++) {
    const a = seq++
    const r = probeR.next(isMouse(a), 10_000)
    const t0 = now()
    s.sendMouse({ x: a, y: 1 })
    const dr = (await r).at - t0
    const b = seq++
    const w = probeW.next(isMouse(b), 10_000)
    const bytes = mouseWire(b)
    const t1 = now()
    ws.send(bytes)
    const dw = (await w).at - t1
    if (i >= 100) ours.push(dr), base.push(dw)
  }
  const [o, b] = [summarize(ours), summarize(base)]
  for (const q of ["p50", "p99"] as const) {
    emit({ name: `mouse 13 B client → chardev ${q}: vdrelay vs websockify ${version}; ${RUNTIME}`, value: round(o[q]), unit: "ms", baseline: round(b[q]), ratio: round(o[q] / b[q], 2) })
  }
}
