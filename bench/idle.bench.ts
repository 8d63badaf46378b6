// Figure 9: what an idle VM costs. VMs with a bridge tunnel and an SDK console attached and nothing happening, both
// links pinging every second (20× the default rate, so that a minute stands for 20): Durable Object requests (incoming
// WebSocket messages the object ran), object starts (a start after the first is a wake from hibernation), workerd CPU
// from its own /proc counters, and workerd memory per session. Baseline in the same run: one console speaking the
// binary `ping` of peers older than the text heartbeat, which the object itself answers.
import WebSocket from "ws"
import { decodeRelayToClient, encodeClientToRelay } from "../src/link/client-codec.ts"
import { LINK_VERSION } from "../src/link/types.ts"
import type { WebSocketConstructor } from "../src/client/index.ts"
import { cpuMs, descendants } from "../test/harness/proc.ts"
import type { Emit } from "./run.ts"
import { type BenchWorker, TENANT, startBenchWorker, startProbeRig, workerdRss } from "./lib/stack.ts"
import { longRuns, round, sleep } from "./lib/stats.ts"

const SESSIONS = 8
const PING_MS = 1000
/** Default heartbeat interval of both peers: what an hour of idle costs in real life is scaled from PING_MS to it. */
const DEFAULT_PING_MS = 20_000
const client = { WebSocket: WebSocket as unknown as WebSocketConstructor, heartbeatMs: PING_MS }

type Edge = Record<string, number>

const status = async (worker: BenchWorker, vm: string): Promise<{ edge: Edge; bridgePing: string | null }> => {
  const token = await worker.mint({ tenant: TENANT, vm, role: "operator" })
  const r = await fetch(`${worker.url}/v1/vms/${vm}/status`, { headers: { authorization: `Bearer ${token}` } })
  const s = (await r.json()) as { edge: Edge; agent: { bridgePing: string | null } }
  return { edge: s.edge, bridgePing: s.agent.bridgePing }
}

const delta = (a: Edge, b: Edge, key: string): number => (b[key] ?? 0) - (a[key] ?? 0)

/** A console as peers before the text heartbeat were: hello, then a binary `ping` frame every PING_MS. */
const oldStyleConsole = async (worker: BenchWorker, vm: string): Promise<{ pongs: () => number; pings: () => number; close: () => void }> => {
  const token = await worker.mint({ tenant: TENANT, vm, role: "viewer", ttl: 3600 })
  const ws = new WebSocket(`${worker.wsUrl}/v1/vms/${vm}/console`, ["vdrelay.v1", `vdrelay.token.${token}`])
  let pongs = 0
  let welcomed: () => void = () => {}
  const welcome = new Promise<void>((r) => (welcomed = r))
  ws.on("message", (data: Buffer) => {
    const d = decodeRelayToClient(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    if (d._tag === "Ok" && d.value.t === "welcome") welcomed()
    if (d._tag === "Ok" && d.value.t === "pong") pongs++
  })
  await new Promise<void>((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)))
  ws.send(encodeClientToRelay({ t: "hello", v: LINK_VERSION, client: "old-peer", role: "viewer", caps: [] }))
  await welcome
  let n = 0
  const timer = setInterval(() => ws.send(encodeClientToRelay({ t: "ping", n: ++n })), PING_MS)
  return { pongs: () => pongs, pings: () => n, close: () => (clearInterval(timer), ws.close()) }
}

export default async (emit: Emit): Promise<void> => {
  const idleMs = longRuns() ? 300_000 : 60_000
  const worker = await startBenchWorker()
  const [workerd] = descendants(worker.pid, "workerd")
  // workerd's own cost with no session at all, over a tenth of the idle window.
  const empty0 = cpuMs(workerd!)
  await sleep(idleMs / 10)
  const emptyCpuPerHour = (cpuMs(workerd!) - empty0) / (idleMs / 10 / 3_600_000)
  const rssEmpty = workerdRss(worker)
  const rig = await startProbeRig(SESSIONS, { worker, prefix: "idle", client, pingIntervalMs: PING_MS })
  const old = await oldStyleConsole(worker, "idle-old")
  try {
    const vms = Array.from({ length: SESSIONS }, (_, i) => `idle${i}`)
    await sleep(2000) // handshakes, announces and their acks settle
    const before = await Promise.all(vms.map((vm) => status(worker, vm)))
    const oldBefore = await status(worker, "idle-old")
    const cpu0 = cpuMs(workerd!)
    const rssActive = workerdRss(worker)
    await sleep(idleMs)
    const cpu1 = cpuMs(workerd!)
    const rssIdle = workerdRss(worker)
    const after = await Promise.all(vms.map((vm) => status(worker, vm)))
    const oldAfter = await status(worker, "idle-old")
    const hours = idleMs / 3_600_000
    // Heartbeats are the only traffic of an idle session: counts at PING_MS scale to the default interval by this.
    const scale = PING_MS / DEFAULT_PING_MS
    let requests = 0
    let starts = 0
    let answered = 0
    for (let i = 0; i < SESSIONS; i++) {
      const [a, b] = [before[i]!.edge, after[i]!.edge]
      requests += delta(a, b, "frames.in.client") + delta(a, b, "frames.in.bridge") + delta(a, b, "pings.in-object")
      // The status read after the idle wakes a hibernated object once: that start is the measurement's, not the idle's.
      starts += Math.max(0, delta(a, b, "object.starts") - 1)
      if (after[i]!.bridgePing !== null && after[i]!.bridgePing !== before[i]!.bridgePing) answered++
    }
    const lost = rig.sessions.filter((s) => s.state !== "open").length
    const hibernated = after.filter((s, i) => delta(before[i]!.edge, s.edge, "object.starts") >= 1).length
    const pingsPerVmHour = (2 * 3_600_000) / DEFAULT_PING_MS
    emit({
      name: `DO requests (incoming WebSocket messages) per idle VM-hour, bridge + console attached, heartbeats at the default ${DEFAULT_PING_MS / 1000} s (measured over ${idleMs / 1000} s × ${SESSIONS} VMs at ${PING_MS / 1000} s, scaled ÷${DEFAULT_PING_MS / PING_MS}; bridge heartbeats auto-answered on ${answered}/${SESSIONS}; ${lost} consoles lost their link; baseline: a binary-ping console of an older peer, ${oldAfter.edge["frames.in.client"]! - (oldBefore.edge["frames.in.client"] ?? 0)} pings run by the object, ×2 links)`,
      value: round((requests / SESSIONS / hours) * scale, 2),
      unit: "requests/VM-h",
      baseline: round(((delta(oldBefore.edge, oldAfter.edge, "frames.in.client") * 2) / hours) * scale, 0),
    })
    emit({
      name: `DO wake-ups (object starts after the first, the measuring status read excluded) per idle VM-hour (${hibernated}/${SESSIONS} objects were evicted during the idle; heartbeats as above; expected without auto-response: ${pingsPerVmHour}/h)`,
      value: round((starts / SESSIONS / hours) * scale, 2),
      unit: "wakes/VM-h",
    })
    emit({
      name: `workerd CPU per idle session-hour at ${PING_MS / 1000} s heartbeats, an upper bound for the default ${DEFAULT_PING_MS / 1000} s (/proc utime+stime of workerd over ${idleMs / 1000} s with ${SESSIONS} sessions, less workerd's own ${round(emptyCpuPerHour, 0)} ms/h with none; 10 ms ticks)`,
      value: round(((cpu1 - cpu0) / hours - emptyCpuPerHour) / SESSIONS, 0),
      unit: "ms/session-h",
    })
    emit({ name: `workerd memory per idle session after ${idleMs / 1000} s idle (RSS − RSS before any session, ÷ ${SESSIONS + 1}; right after attaching: ${round((rssActive - rssEmpty) / (SESSIONS + 1) / 1024, 0)} KiB)`, value: round((rssIdle - rssEmpty) / (SESSIONS + 1) / 1024, 0), unit: "KiB" })
    emit({ name: `pongs the old-style console received (binary ping answered by the object; ${old.pings()} sent)`, value: old.pongs(), unit: "pongs", baseline: old.pings() })
  } finally {
    old.close()
    await rig.stop()
    await worker.stop()
  }
}
