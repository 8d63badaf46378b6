// Figure 6: sessions per local workerd (2 cores) at a fixed per-session load before p99 latency doubles; workerd memory
// per idle and per active session; Durable Object messages per second and frames per agent message for a busy one.
// Each session is a VM (probe agent at its chardev), a bridge tunnel and an SDK console, all on one workerd. Section
// "pinned" repeats the curve with the load generators (this process, the worker's controlling process, the bridges)
// on CPU 0 and workerd on CPU 1 (taskset), so that the consoles and bridges do not take workerd's core.
import { execFileSync } from "node:child_process"
import WebSocket from "ws"
import type { Session, WebSocketConstructor } from "../src/client/index.ts"
import { ClipboardType, MessageType } from "../src/protocol/constants.ts"
import type { Emit, Want } from "./run.ts"
import { type ProbeAgent, u32At } from "./lib/probe-agent.ts"
import { cpuSplitMs, descendants } from "../test/harness/proc.ts"
import { type BenchWorker, type ProbeRig, TENANT, startBenchWorker, startProbeRig, workerdRss } from "./lib/stack.ts"
import { longRuns, now, round, sleep, summarize } from "./lib/stats.ts"

/** A pointer in continuous motion at display rate: the heaviest steady load a console puts on its session. */
const MOUSE_HZ = 60
const WARM_MS = 1000
const STEP_MS = 5000
/** The baseline (one session) runs longer so that its p99 rests on a few hundred samples. */
const BASE_MS = 10_000
const RUNTIME = "one raw Miniflare/workerd process; bridges and SDK consoles share the same 2 cores"
const client = { WebSocket: WebSocket as unknown as WebSocketConstructor }

interface Load {
  readonly latencies: number[]
  sent: number
  stop(): void
}

/** Every session moves its pointer at MOUSE_HZ (random phase); latency = send → whole message at the chardev. */
const mouseLoad = (pairs: ReadonlyArray<readonly [Session, ProbeAgent]>): Load => {
  const load: Load = { latencies: [], sent: 0, stop: () => {} }
  const timers: NodeJS.Timeout[] = []
  const offs: Array<() => void> = []
  pairs.forEach(([s, probe], i) => {
    const sentAt = new Map<number, number>()
    let seq = (i + 1) * 1_000_000
    offs.push(probe.onMessage((a) => {
      if (a.type !== MessageType.MouseState) return
      const q = u32At(a.head, 0)
      const t = sentAt.get(q)
      if (t !== undefined) load.latencies.push(a.at - t)
      for (const k of sentAt.keys()) if (k <= q) sentAt.delete(k) // older moves were coalesced into this one
    }))
    const tick = (): void => {
      sentAt.set(++seq, now())
      load.sent++
      s.sendMouse({ x: seq, y: 1 })
    }
    timers.push(setTimeout(() => timers.push(setInterval(tick, 1000 / MOUSE_HZ)), Math.random() * (1000 / MOUSE_HZ)))
  })
  load.stop = () => {
    for (const t of timers) clearInterval(t)
    for (const off of offs) off()
  }
  return load
}

const edgeCounters = async (worker: BenchWorker, vm: string): Promise<Record<string, number>> => {
  const token = await worker.mint({ tenant: TENANT, vm, role: "operator" })
  const r = await fetch(`${worker.url}/v1/vms/${vm}/status`, { headers: { authorization: `Bearer ${token}` } })
  return ((await r.json()) as { edge: Record<string, number> }).edge
}

const frames = (a: Record<string, number>, b: Record<string, number>): number =>
  ["frames.in.client", "frames.out.client", "frames.in.bridge", "frames.out.bridge"].reduce((n, k) => n + (b[k] ?? 0) - (a[k] ?? 0), 0)

export default async (emit: Emit, want: Want): Promise<void> => {
  const maxSessions = longRuns() ? 256 : 64
  const worker = await startBenchWorker()
  const rigs: ProbeRig[] = []
  try {
    if (want("curve")) await curve(emit, worker, rigs, maxSessions)
    if (want("pinned")) await curve(emit, worker, rigs, Math.min(maxSessions, 32), pinned(worker))
    if (want("frames")) await busySession(emit, worker)
    if (want("cpu")) await capacity(emit, worker)
  } finally {
    for (const r of rigs) await r.stop()
    await worker.stop()
  }
}

/** CPU affinity of `pid` and all its threads (taskset -a), e.g. "0" or "0,1". */
const setAffinity = (pid: number, cpus: string): void => void execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" })

interface Pinning {
  /** Pins a new rig's bridge process to the load generators' CPU. */
  add(rig: ProbeRig): void
  release(): void
  readonly label: string
}

/** Workerd on CPU 1; this process (consoles and probe agents), the worker's controlling Node process and bridges on CPU 0. */
const pinned = (worker: BenchWorker): Pinning => {
  const workerd = descendants(worker.pid, "workerd")
  const generators = [process.pid, worker.pid]
  const bridges: number[] = []
  for (const pid of workerd) setAffinity(pid, "1")
  for (const pid of generators) setAffinity(pid, "0")
  return {
    label: "pinned: workerd on CPU 1, consoles + probe agents + bridges on CPU 0 (taskset); other users' processes still float",
    add: (rig) => {
      bridges.push(rig.bridge.pid)
      setAffinity(rig.bridge.pid, "0")
    },
    release: () => {
      for (const pid of [...workerd, ...generators, ...bridges]) {
        try {
          setAffinity(pid, "0,1")
        } catch {
          // a bridge already stopped
        }
      }
    },
  }
}

/** Sessions added in doubling steps, every one moving its pointer, until p99 doubles (sections "curve", "pinned"). */
const curve = async (emit: Emit, worker: BenchWorker, rigs: ProbeRig[], maxSessions: number, pin?: Pinning): Promise<void> => {
  const tag = pin === undefined ? "" : `; ${pin.label}`
  try {
    let total = 0
    let rss1 = { idle: 0, active: 0 }
    let baseP99: number | undefined
    let lastOk = 0
    let idlePer = 0
    let activePer = 0
    for (let n = 1; n <= maxSessions; n *= 2) {
      const rig = await startProbeRig(n - total, { worker, prefix: `${pin === undefined ? "s" : "p"}${n}-`, client })
      rigs.push(rig)
      pin?.add(rig)
      total = n
      await sleep(500)
      const rssIdle = await workerdRss(worker)
      const pairs = rigs.flatMap((r) => r.sessions.map((s, i) => [s, r.probes[i]!] as const))
      const load = mouseLoad(pairs)
      await sleep(WARM_MS)
      load.latencies.length = 0
      await sleep(n === 1 ? BASE_MS : STEP_MS)
      const rssActive = await workerdRss(worker)
      load.stop()
      const l = summarize(load.latencies)
      baseP99 ??= l.p99
      // Marginal cost against the one-session step: the first session also pays for the isolate and the bundle.
      if (n === 1) rss1 = { idle: rssIdle, active: rssActive }
      else {
        idlePer = (rssIdle - rss1.idle) / (n - 1)
        activePer = (rssActive - rss1.active) / (n - 1)
      }
      process.stderr.write(`scale${pin === undefined ? "" : " (pinned)"}: ${n} sessions p50 ${round(l.p50)} p99 ${round(l.p99)} ms (${l.n}/${load.sent} arrived) rss idle ${round(rssIdle / 2 ** 20, 1)} active ${round(rssActive / 2 ** 20, 1)} MiB\n`)
      // The whole curve, not only where it crosses 2×: one noisy step should not hide the trend.
      emit({ name: `mouse p99 at ${n} sessions × ${MOUSE_HZ} moves/s (p50 ${round(l.p50)} ms; ${l.n} samples; baseline: p99 at 1 session${tag})`, value: round(l.p99), unit: "ms", baseline: round(baseP99), ratio: round(l.p99 / baseP99, 2) })
      if (l.p99 > 2 * baseP99) break
      lastOk = n
    }
    emit({ name: `sessions per workerd at ${MOUSE_HZ} mouse moves/s each before p99 mouse latency doubles (p99 at 1 session: ${round(baseP99 ?? 0)} ms; stopped at ${maxSessions}; ${RUNTIME}${tag})`, value: lastOk, unit: "sessions" })
    if (pin === undefined) {
      emit({ name: `workerd memory per idle session (bridge + console attached, ${total} sessions)`, value: round(idlePer / 1024, 0), unit: "KiB" })
      emit({ name: `workerd memory per active session (${MOUSE_HZ} mouse moves/s, ${total} sessions)`, value: round(activePer / 1024, 0), unit: "KiB" })
    }
  } finally {
    pin?.release()
    for (const r of rigs.splice(0)) await r.stop()
  }
}

/** One busy session: pointer at 100 Hz plus a 10 MiB clipboard each way; Durable Object frames counted at the edge. */
const busySession = async (emit: Emit, worker: BenchWorker): Promise<void> => {
  const rig = await startProbeRig(1, { worker, prefix: "busy", client })
  try {
    const [s, probe] = [rig.sessions[0]!, rig.probes[0]!]
    const vm = "busy0"
    let c0 = await edgeCounters(worker, vm)
    let seq = 0
    const t0 = now()
    const timer = setInterval(() => s.sendMouse({ x: ++seq, y: 1 }), 10)
    await sleep(3000)
    clearInterval(timer)
    await sleep(100)
    let c1 = await edgeCounters(worker, vm)
    const secs = (now() - t0) / 1000
    emit({ name: `DO messages/s, one session with the pointer at 100 Hz (${seq} moves; soft limit ~1,000/s per object)`, value: round(frames(c0, c1) / secs, 0), unit: "msgs/s" })
    const d = (k: string): number => (c1[k] ?? 0) - (c0[k] ?? 0)
    emit({ name: `DO frames per mouse move, all (client mouse in + bridge write out + bridge wrote in; ${seq} moves at 100 Hz)`, value: round(frames(c0, c1) / seq, 2), unit: "frames/move" })
    emit({ name: "DO frames in from the console per mouse move (target ≤ 1)", value: round(d("frames.in.client") / seq, 3), unit: "frames/move" })
    emit({ name: "DO frames in from the bridge per mouse move (wrote acks; target 0, batched)", value: round(d("frames.in.bridge") / seq, 3), unit: "frames/move" })
    const payload = new Uint8Array(8 + 10 * 2 ** 20).fill(0x64)
    new DataView(payload.buffer).setUint32(4, ClipboardType.Utf8Text, true)
    c0 = await edgeCounters(worker, vm)
    const got = new Promise<void>((resolve) => {
      const off = s.on("message", (m) => m.type === MessageType.Clipboard && (off(), resolve()))
    })
    probe.send(MessageType.Clipboard, payload)
    await got
    c1 = await edgeCounters(worker, vm)
    emit({ name: "DO frames for one 10 MiB agent → client message (bridge data + acks + client fragments + credits)", value: frames(c0, c1), unit: "frames/msg" })
    c0 = c1
    const arrived = probe.next((a) => a.type === MessageType.Clipboard && a.size === payload.length, 60_000)
    await s.sendMessage({ _tag: "Clipboard", selection: 0, dataType: ClipboardType.Utf8Text, data: payload.subarray(8) })
    await arrived
    await sleep(100)
    c1 = await edgeCounters(worker, vm)
    emit({ name: "DO frames for one 10 MiB client → agent message (client fragments + credits + bridge writes + acks)", value: frames(c0, c1), unit: "frames/msg" })
  } finally {
    await rig.stop()
  }
}

/**
 * Section "cpu": workerd's own CPU (/proc utime + stime of the workerd process, 10 ms ticks) per mouse move and per
 * MiB each way, over one session; sessions per workerd core at 60 moves/s follow from the per-move figure. Other
 * engineers' processes do not count in it, but a loaded machine still lengthens cache misses and context switches.
 */
const capacity = async (emit: Emit, worker: BenchWorker): Promise<void> => {
  const rig = await startProbeRig(1, { worker, prefix: "cpu", client })
  const [workerd] = descendants(worker.pid, "workerd")
  const cpu = (): number => {
    const c = cpuSplitMs(workerd!)
    return c.userMs + c.systemMs
  }
  try {
    const [s, probe] = [rig.sessions[0]!, rig.probes[0]!]
    probe.record = false
    const moves = longRuns() ? 5000 : 2000
    let seq = 0
    // Each move waits for the previous one to reach the chardev: no coalescing, every move crosses every hop.
    const move = async (): Promise<void> => {
      const q = ++seq
      const arrived = probe.next((a) => a.type === MessageType.MouseState && u32At(a.head, 0) === q, 10_000)
      s.sendMouse({ x: q, y: 1 })
      await arrived
    }
    for (let i = 0; i < 100; i++) await move()
    let c0 = cpu()
    for (let i = 0; i < moves; i++) await move()
    const perMove = (cpu() - c0) / moves
    emit({ name: `workerd CPU per mouse move (console → chardev, ${moves} moves one after another; /proc utime+stime)`, value: round(perMove, 4), unit: "ms/move" })
    emit({ name: "sessions per workerd core at 60 mouse moves/s each (1000 ms ÷ (60 × CPU per move); the CPU bound only)", value: round(1000 / (60 * perMove), 0), unit: "sessions/core" })
    const MiB = 2 ** 20
    const payload = new Uint8Array(8 + 10 * MiB).fill(0x64)
    new DataView(payload.buffer).setUint32(4, ClipboardType.Utf8Text, true)
    const runs = 3
    c0 = cpu()
    for (let r = 0; r < runs; r++) {
      const arrived = probe.next((a) => a.type === MessageType.Clipboard && a.size === payload.length, 60_000)
      await s.sendMessage({ _tag: "Clipboard", selection: 0, dataType: ClipboardType.Utf8Text, data: payload.subarray(8) })
      await arrived
    }
    emit({ name: `workerd CPU per MiB console → guest (${runs} × 10 MiB clipboard)`, value: round((cpu() - c0) / (runs * 10), 2), unit: "ms/MiB" })
    c0 = cpu()
    for (let r = 0; r < runs; r++) {
      const got = new Promise<void>((resolve) => {
        const off = s.on("message", (m) => m.type === MessageType.Clipboard && (off(), resolve()))
      })
      probe.send(MessageType.Clipboard, payload)
      await got
    }
    emit({ name: `workerd CPU per MiB guest → console (${runs} × 10 MiB clipboard)`, value: round((cpu() - c0) / (runs * 10), 2), unit: "ms/MiB" })
  } finally {
    await rig.stop()
  }
}
