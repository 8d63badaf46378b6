// Profiling aid for figure 2 (not a benchmark): repeats the 10 MiB guest → client clipboard through the whole relay and
// reports the CPU each process spent per transfer (SDK = this process, bridge, workerd), from /proc. Run it with
// `node --import tsx bench/lib/profile-g2c.ts [runs]`; add NODE_OPTIONS="--cpu-prof --cpu-prof-dir=DIR" for V8 profiles
// of the bridge (written when it exits) and SDK_PROFILE=FILE for a V8 profile of this process during the transfers only.
import { randomBytes } from "node:crypto"
import { writeFileSync } from "node:fs"
import { Session as Inspector } from "node:inspector/promises"
import { cpuMs, cpuSplitMs, workerdPid } from "../../test/harness/proc.ts"
import { startRealAgent } from "../../test/harness/real-agent.ts"
import { agentReady, openClient, startBenchWorker, startBridge } from "./stack.ts"
import { median, now } from "./stats.ts"

const MiB = 1024 * 1024

const runs = Number(process.argv[2] ?? 8)
const agent = await startRealAgent()
const worker = await startBenchWorker()
const bridge = await startBridge(worker, [{ id: "prof", chardev: agent.hostSocketPath }])
const s = await openClient(worker, "prof")
try {
  await agentReady(s)
  const r = randomBytes(10 * MiB)
  let text = ""
  for (let i = 0; i < r.length; i += 65536) text += r.subarray(i, i + 65536).toString("base64").slice(0, 65536)
  text = text.slice(0, 10 * MiB)
  const wd = workerdPid(worker.pid)
  const times: number[] = []
  const cpu = { sdk: [] as number[], bridge: [] as number[], workerd: [] as number[] }
  const sys0 = { sdk: process.cpuUsage().system / 1000, bridge: cpuSplitMs(bridge.pid).systemMs, workerd: cpuSplitMs(wd).systemMs }
  const inspector = process.env.SDK_PROFILE === undefined ? undefined : new Inspector()
  if (inspector !== undefined) {
    inspector.connect()
    await inspector.post("Profiler.enable")
  }
  for (let i = 0; i < runs; i++) {
    const grab = s.next("clipboard-grab")
    await agent.setClipboard(text)
    await grab
    if (inspector !== undefined && i > 0) await inspector.post("Profiler.start")
    const c0 = process.cpuUsage()
    const b0 = cpuMs(bridge.pid)
    const w0 = cpuMs(wd)
    const t0 = now()
    const got = await s.requestClipboardText()
    const ms = now() - t0
    const c1 = process.cpuUsage(c0)
    if (inspector !== undefined && i > 0) {
      const { profile } = await inspector.post("Profiler.stop")
      writeFileSync(`${process.env.SDK_PROFILE}.${i}.cpuprofile`, JSON.stringify(profile))
    }
    if (got !== text) throw new Error("mismatch")
    if (i === 0) continue // warm-up
    times.push(ms)
    cpu.sdk.push((c1.user + c1.system) / 1000)
    cpu.bridge.push(cpuMs(bridge.pid) - b0)
    cpu.workerd.push(cpuMs(wd) - w0)
  }
  // CPU as the mean over all runs: /proc counts in 10 ms ticks, too coarse for one run.
  const mean = (a: number[]) => Math.round(a.reduce((x, y) => x + y, 0) / a.length)
  const sys = { sdk: process.cpuUsage().system / 1000 - sys0.sdk, bridge: cpuSplitMs(bridge.pid).systemMs - sys0.bridge, workerd: cpuSplitMs(wd).systemMs - sys0.workerd }
  const perRun = (x: number) => Math.round(x / runs)
  console.log(
    JSON.stringify({
      runs: runs - 1,
      ms: Math.round(median(times)),
      all: times.map(Math.round),
      cpu: { sdk: mean(cpu.sdk), bridge: mean(cpu.bridge), workerd: mean(cpu.workerd) },
      // Kernel share, over every run including the warm-up and the xclip set-up between transfers (an upper bound).
      sys: { sdk: perRun(sys.sdk), bridge: perRun(sys.bridge), workerd: perRun(sys.workerd) },
    }),
  )
  if (process.env.BRIDGE_LOG !== undefined) writeFileSync(process.env.BRIDGE_LOG, bridge.managed.log.text)
} finally {
  await s.close().catch(() => {})
  await bridge.stop()
  await worker.stop()
  await agent.stop()
}
