// Profiling aid for figure 7 (not a benchmark): repeats the 10 MiB client → chardev and chardev → client transfers of
// `baseline-relay` through the whole relay to a probe agent and reports the wall time and the CPU each process spent
// per transfer (SDK = this process, bridge, workerd; user + kernel from /proc), means over the runs.
//   node --import tsx bench/lib/profile-relay.ts [to|from] [runs]
// SDK_PROFILE=FILE writes a V8 profile of this process over the measured transfers; BENCH_BRIDGE_NODE_ARGS (stack.ts)
// profiles the bridge.
import { writeFileSync } from "node:fs"
import { Session as Inspector } from "node:inspector/promises"
import WebSocket from "ws"
import type { WebSocketConstructor } from "../../src/client/index.ts"
import { ClipboardType, MessageType } from "../../src/protocol/constants.ts"
import { cpuMs, workerdPid } from "../../test/harness/proc.ts"
import type { Arrival } from "./probe-agent.ts"
import { type BenchWorker, startProbeRig } from "./stack.ts"
import { median, now } from "./stats.ts"

const MiB = 1024 * 1024
const dir = process.argv[2] === "from" ? "from" : "to"
const runs = Number(process.argv[3] ?? 8)
const rig = await startProbeRig(1, { prefix: "prof", client: { WebSocket: WebSocket as unknown as WebSocketConstructor } })
try {
  const [probe, s] = [rig.probes[0]!, rig.sessions[0]!]
  probe.record = false
  const payload = new Uint8Array(8 + 10 * MiB).fill(0x63)
  new DataView(payload.buffer).setUint32(4, ClipboardType.Utf8Text, true)
  const wd = workerdPid((rig.worker as BenchWorker).pid)
  const inspector = process.env.SDK_PROFILE === undefined ? undefined : new Inspector()
  if (inspector !== undefined) {
    inspector.connect()
    await inspector.post("Profiler.enable")
  }
  const times: number[] = []
  const cpu = { sdk: 0, bridge: 0, workerd: 0 }
  for (let i = 0; i <= runs; i++) {
    if (inspector !== undefined && i === 1) await inspector.post("Profiler.start")
    const c0 = process.cpuUsage()
    const b0 = cpuMs(rig.bridge.pid)
    const w0 = cpuMs(wd)
    const t0 = now()
    if (dir === "to") {
      const arrived = probe.next((a: Arrival) => a.type === MessageType.Clipboard && a.size === payload.length, 60_000)
      s.sendMessage({ _tag: "Clipboard", selection: 0, dataType: ClipboardType.Utf8Text, data: payload.subarray(8) }).catch(() => {})
      await arrived
    } else {
      const got = new Promise<void>((resolve) => {
        const off = s.on("message", (m) => m.type === MessageType.Clipboard && (off(), resolve()))
      })
      probe.send(MessageType.Clipboard, payload)
      await got
    }
    const ms = now() - t0
    const c1 = process.cpuUsage(c0)
    if (i === 0) continue
    times.push(ms)
    cpu.sdk += (c1.user + c1.system) / 1000
    cpu.bridge += cpuMs(rig.bridge.pid) - b0
    cpu.workerd += cpuMs(wd) - w0
    await new Promise((r) => setTimeout(r, 100))
  }
  if (inspector !== undefined) {
    const { profile } = await inspector.post("Profiler.stop")
    writeFileSync(process.env.SDK_PROFILE!, JSON.stringify(profile))
  }
  const mean = (x: number) => Math.round(x / runs)
  console.log(JSON.stringify({ dir, runs, ms: Math.round(median(times)), all: times.map(Math.round), cpu: { sdk: mean(cpu.sdk), bridge: mean(cpu.bridge), workerd: mean(cpu.workerd) } }))
} finally {
  await rig.stop()
}
