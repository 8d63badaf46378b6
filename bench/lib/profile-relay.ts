// Profiling aid for figure 7 (not a benchmark): the 10 MiB client → chardev or chardev → client transfer of
// `baseline-relay`, through the whole relay and through websockify alternately, each to a probe agent, with the wall
// time and the CPU each process spent per transfer (this process = SDK or websockify's client + the probe agents;
// bridge; workerd; websockify), user + kernel from /proc, means over the runs.
//   node --import tsx bench/lib/profile-relay.ts [to|from] [runs]
// SDK_PROFILE=FILE writes a V8 profile of this process over the measured relay transfers; BENCH_BRIDGE_NODE_ARGS
// (stack.ts) profiles the bridge.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { Session as Inspector } from "node:inspector/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import WebSocket from "ws"
import type { WebSocketConstructor } from "../../src/client/index.ts"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import { ClipboardType, MessageType, Port } from "../../src/protocol/constants.ts"
import { cpuMs, descendants, workerdPid } from "../../test/harness/proc.ts"
import { type Arrival, ProbeAgent } from "./probe-agent.ts"
import { type BenchWorker, startProbeRig } from "./stack.ts"
import { median, now } from "./stats.ts"
import { startWebsockify } from "./websockify.ts"

const MiB = 1024 * 1024
const FRAME = 256 * 1024
const dir = process.argv[2] === "from" ? "from" : "to"
const runs = Number(process.argv[3] ?? 8)
/** websockify forks a process per connection: its CPU is the sum over the listener and those. */
const websockifyCpu = (pid: number): number => cpuMs(pid) + descendants(pid, "websockify").reduce((n, c) => n + cpuMs(c), 0)
const tmp = mkdtempSync(join(tmpdir(), "vdr-prof-"))
const probeW = await ProbeAgent.listen(join(tmp, "w.sock"), { announce: false })
const wsf = await startWebsockify(probeW.path)
const ws = await new Promise<WebSocket>((resolve, reject) => {
  const w = new WebSocket(wsf.url, ["binary"], { perMessageDeflate: false })
  w.binaryType = "nodebuffer"
  w.once("open", () => resolve(w)).once("error", reject)
})
await probeW.waitForHost()
const rig = await startProbeRig(1, { prefix: "prof", client: { WebSocket: WebSocket as unknown as WebSocketConstructor } })
try {
  const [probe, s] = [rig.probes[0]!, rig.sessions[0]!]
  probe.record = probeW.record = false
  const payload = new Uint8Array(8 + 10 * MiB).fill(0x63)
  new DataView(payload.buffer).setUint32(4, ClipboardType.Utf8Text, true)
  const wire = encodeChunkedMessage(Port.Client, MessageType.Clipboard, payload)
  const wd = workerdPid((rig.worker as BenchWorker).pid)
  const inspector = process.env.SDK_PROFILE === undefined ? undefined : new Inspector()
  if (inspector !== undefined) {
    inspector.connect()
    await inspector.post("Profiler.enable")
  }
  const isBig = (a: Arrival): boolean => a.type === MessageType.Clipboard && a.size === payload.length
  const relay = async (): Promise<void> => {
    if (dir === "to") {
      const arrived = probe.next(isBig, 60_000)
      s.sendMessage({ _tag: "Clipboard", selection: 0, dataType: ClipboardType.Utf8Text, data: payload.subarray(8) }).catch(() => {})
      await arrived
    } else {
      const got = new Promise<void>((resolve) => {
        const off = s.on("message", (m) => m.type === MessageType.Clipboard && (off(), resolve()))
      })
      probe.send(MessageType.Clipboard, payload)
      await got
    }
  }
  const websockify = async (): Promise<void> => {
    if (dir === "to") {
      const arrived = probeW.next(isBig, 60_000)
      for (let at = 0; at < wire.length; at += FRAME) ws.send(wire.subarray(at, at + FRAME))
      await arrived
    } else {
      let n = 0
      await new Promise<void>((resolve) => {
        const onData = (b: Buffer): void => {
          n += b.length
          if (n >= 28 + payload.length) ws.off("message", onData), resolve()
        }
        ws.on("message", onData)
        probeW.send(MessageType.Clipboard, payload)
      })
    }
  }
  const r = { ms: [] as number[], self: 0, bridge: 0, workerd: 0 }
  const w = { ms: [] as number[], self: 0, websockify: 0 }
  for (let i = 0; i <= runs; i++) {
    if (inspector !== undefined && i === 1) await inspector.post("Profiler.start")
    let c0 = process.cpuUsage()
    const [b0, w0] = [cpuMs(rig.bridge.pid), cpuMs(wd)]
    let t0 = now()
    await relay()
    let ms = now() - t0
    let c1 = process.cpuUsage(c0)
    if (inspector !== undefined && i > 0) await inspector.post("Profiler.stop").then(({ profile }) => i === runs && writeFileSync(process.env.SDK_PROFILE!, JSON.stringify(profile)))
    if (inspector !== undefined && i > 0 && i < runs) await inspector.post("Profiler.start")
    if (i > 0) {
      r.ms.push(ms)
      r.self += (c1.user + c1.system) / 1000
      r.bridge += cpuMs(rig.bridge.pid) - b0
      r.workerd += cpuMs(wd) - w0
    }
    await new Promise((res) => setTimeout(res, 50))
    c0 = process.cpuUsage()
    const x1 = websockifyCpu(wsf.pid)
    t0 = now()
    await websockify()
    ms = now() - t0
    c1 = process.cpuUsage(c0)
    if (i > 0) {
      w.ms.push(ms)
      w.self += (c1.user + c1.system) / 1000
      w.websockify += websockifyCpu(wsf.pid) - x1
    }
    await new Promise((res) => setTimeout(res, 50))
  }
  const mean = (x: number) => Math.round(x / runs)
  console.log(JSON.stringify({
    dir,
    runs,
    relay: { ms: Math.round(median(r.ms)), all: r.ms.map(Math.round), cpu: { self: mean(r.self), bridge: mean(r.bridge), workerd: mean(r.workerd), sum: mean(r.self + r.bridge + r.workerd) } },
    websockify: { ms: Math.round(median(w.ms)), all: w.ms.map(Math.round), cpu: { self: mean(w.self), websockify: mean(w.websockify), sum: mean(w.self + w.websockify) } },
  }))
  if (process.env.BRIDGE_LOG !== undefined) writeFileSync(process.env.BRIDGE_LOG, rig.bridge.managed.log.text)
} finally {
  ws.close()
  await wsf.stop()
  await probeW.close()
  await rig.stop()
  rmSync(tmp, { recursive: true, force: true })
}
