// Not a benchmark: a V8 CPU profile of the Worker's isolate (the Worker and its Durable Objects) inside workerd, over
// the DevTools protocol that Miniflare serves when the harness runs with VDRELAY_INSPECTOR_PORT. Start the workload
// with that variable set (e.g. `VDRELAY_INSPECTOR_PORT=9230 node --import tsx bench/lib/profile-file.ts 4`), then
//   node --import tsx bench/lib/profile-workerd.ts PORT SECONDS OUT.cpuprofile
// waits for the inspector, profiles for SECONDS and writes the profile (open it in DevTools, or summarise it).
import { writeFileSync } from "node:fs"
import { setTimeout as sleep } from "node:timers/promises"
import WebSocket from "ws"

const [port, seconds, out] = [Number(process.argv[2] ?? 9230), Number(process.argv[3] ?? 10), process.argv[4] ?? "workerd.cpuprofile"]

const target = async (): Promise<string> => {
  for (let i = 0; i < 600; i++) {
    try {
      const list = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as Array<{ webSocketDebuggerUrl?: string; title?: string }>
      const t = list.find((x) => x.webSocketDebuggerUrl !== undefined)
      if (t !== undefined) return t.webSocketDebuggerUrl!
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  throw new Error(`no inspector target on port ${port}`)
}

const ws = new WebSocket(await target())
await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject))
let next = 1
const pending = new Map<number, (r: unknown) => void>()
ws.on("message", (d: Buffer) => {
  const m = JSON.parse(d.toString()) as { id?: number; result?: unknown }
  if (m.id !== undefined) pending.get(m.id)?.(m.result)
})
const call = (method: string, params: object = {}): Promise<unknown> =>
  new Promise((resolve) => {
    const id = next++
    pending.set(id, resolve)
    ws.send(JSON.stringify({ id, method, params }))
  })
await call("Profiler.enable")
await call("Profiler.setSamplingInterval", { interval: 200 })
await call("Profiler.start")
process.stderr.write(`profiling workerd for ${seconds} s\n`)
await sleep(seconds * 1000)
const { profile } = (await call("Profiler.stop")) as { profile: unknown }
writeFileSync(out, JSON.stringify(profile))
ws.close()
