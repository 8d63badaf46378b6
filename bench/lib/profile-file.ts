// Not a benchmark: where a file transfer to the real agent spends its time (figure 3's path without the delay proxy,
// unless DELAY_MS is set). Sends a FILE_MIB MiB file (default 32) `runs` times through SDK → workerd → bridge → real
// agent and prints the wall time and each process's CPU per file from /proc (this process = the SDK; bridge; workerd;
// the agent and Xvfb are not counted). SDK_PROFILE=FILE writes a V8 profile of this process over the last transfer.
//   node --import tsx bench/lib/profile-file.ts [runs]
import { randomBytes } from "node:crypto"
import { rm } from "node:fs/promises"
import { writeFileSync } from "node:fs"
import { Session as Inspector } from "node:inspector/promises"
import { join } from "node:path"
import WebSocket from "ws"
import type { WebSocketConstructor } from "../../src/client/index.ts"
import { cpuMs, workerdPid } from "../../test/harness/proc.ts"
import { startRealAgent } from "../../test/harness/real-agent.ts"
import { startDelayProxy } from "./delay-proxy.ts"
import { agentReady, openClient, startBenchWorker, startBridge } from "./stack.ts"
import { median, now } from "./stats.ts"

const MiB = 1024 * 1024
const runs = Number(process.argv[2] ?? 4)
const file = randomBytes(Number(process.env.FILE_MIB ?? 32) * MiB)
const delayMs = Number(process.env.DELAY_MS ?? 0)
const agent = await startRealAgent()
const worker = await startBenchWorker()
const bridge = await startBridge(worker, [{ id: "prof", chardev: agent.hostSocketPath }])
const proxy = delayMs > 0 ? await startDelayProxy({ target: { host: "127.0.0.1", port: Number(new URL(worker.url).port) }, delayMs }) : undefined
const s = await openClient(worker, "prof", { WebSocket: WebSocket as unknown as WebSocketConstructor, ...(proxy === undefined ? {} : { base: `ws://127.0.0.1:${proxy.port}` }) })
try {
  await agentReady(s)
  const wd = workerdPid(worker.pid)
  const inspector = process.env.SDK_PROFILE === undefined ? undefined : new Inspector()
  inspector?.connect()
  await inspector?.post("Profiler.enable")
  const r = { ms: [] as number[], sdk: 0, bridge: 0, workerd: 0 }
  for (let i = 0; i <= runs; i++) {
    if (inspector !== undefined && i === runs) await inspector.post("Profiler.start")
    const c0 = process.cpuUsage()
    const [b0, w0] = [cpuMs(bridge.pid), cpuMs(wd)]
    const t0 = now()
    await s.sendFile({ name: `prof-${i}.bin`, data: file }).done
    const ms = now() - t0
    const c1 = process.cpuUsage(c0)
    if (inspector !== undefined && i === runs) writeFileSync(process.env.SDK_PROFILE!, JSON.stringify((await inspector.post("Profiler.stop")).profile))
    if (i > 0) {
      r.ms.push(ms)
      r.sdk += (c1.user + c1.system) / 1000
      r.bridge += cpuMs(bridge.pid) - b0
      r.workerd += cpuMs(wd) - w0
    }
    await rm(join(agent.xferDir, `prof-${i}.bin`), { force: true })
  }
  const per = (n: number): number => Math.round(n / runs)
  console.log(JSON.stringify({ mib: file.length / MiB, delayMs, runs, ms: Math.round(median(r.ms)), all: r.ms.map(Math.round), cpu: { sdk: per(r.sdk), bridge: per(r.bridge), workerd: per(r.workerd), sum: per(r.sdk + r.bridge + r.workerd) } }))
} finally {
  await s.close().catch(() => {})
  await proxy?.close()
  await bridge.stop()
  await worker.stop()
  await agent.stop()
}
