// The whole relay for benchmarks: the Worker bundle in raw Miniflare/workerd (test/harness/worker.ts, never wrangler
// dev's proxy), the host bridge as its own process (`vdrelay bridge`, as deployed), and SDK sessions in this process.
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import WebSocket from "ws"
import { type Session, type WebSocketConstructor, connect } from "../../src/client/index.ts"
import type { ConnectOptions } from "../../src/client/types.ts"
import { type BridgeProcess, type BridgeVm, startBridgeProcess } from "../../test/harness/bridge-process.ts"
import { descendants, rssBytes } from "../../test/harness/proc.ts"
import { spawn } from "node:child_process"
import { mintToken } from "../../src/auth/token.ts"
import type { LocalWorker } from "../../test/harness/worker.ts"
import { ProbeAgent } from "./probe-agent.ts"
import { sleep } from "./stats.ts"

// Miniflare would otherwise try to fetch Cloudflare's `cf` object from the network on every start.
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"
process.env.WRANGLER_SEND_METRICS = "false"
process.env.DO_NOT_TRACK = "1"

const ROOT = resolve(import.meta.dirname, "../..")
export const TENANT = "bench"

export type { BridgeProcess, BridgeVm }

/** Extra node flags for bridge processes, e.g. BENCH_BRIDGE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p" to profile them. */
const bridgeNodeArgs = (process.env.BENCH_BRIDGE_NODE_ARGS ?? "").split(" ").filter((a) => a !== "")

/** Spawns `vdrelay bridge` for `vms`, each with its own bridge token, tunnelling to `worker` (or `edgeBase`). */
export const startBridge = (
  worker: LocalWorker,
  vms: ReadonlyArray<BridgeVm>,
  opts: { edgeBase?: string; limits?: Record<string, number>; logLevel?: "debug" | "info" | "warn" | "error"; pingIntervalMs?: number } = {},
): Promise<BridgeProcess> =>
  startBridgeProcess({
    mint: worker.mint,
    tenant: TENANT,
    edgeBase: opts.edgeBase ?? worker.wsUrl,
    vms,
    name: "bench",
    reconnect: { baseMs: 50, capMs: 1000 },
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    logLevel: opts.logLevel ?? "warn",
    nodeArgs: bridgeNodeArgs,
    tokenTtl: 3600,
    ...(opts.pingIntervalMs === undefined ? {} : { pingIntervalMs: opts.pingIntervalMs }),
  })

/** Opens an SDK session for `vm` as a controller; `url` overrides the endpoint (e.g. through a delay proxy). */
export const openClient = (worker: LocalWorker, vm: string, opts: Partial<ConnectOptions> & { base?: string } = {}): Promise<Session> =>
  connect({
    url: `${opts.base ?? worker.wsUrl}/v1/vms/${vm}/console`,
    token: () => worker.mint({ tenant: TENANT, vm, role: "controller", ttl: 3600 }),
    clientName: "vdrelay-bench",
    heartbeatMs: 0,
    // Node's `ws` (a dependency already): undici's WebSocket halves the client's throughput, which is not the relay's.
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    ...opts,
  })

/** Resolves once the session sees the agent connected with caps (the relay has the agent's announce). */
export const agentReady = async (s: Session, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(s.agent.connected && s.agent.caps !== null)) {
    if (Date.now() > deadline) throw new Error(`agent not connected through the relay within ${timeoutMs} ms`)
    await sleep(10)
  }
}

export type { LocalWorker }

/** The worker's process, beside the LocalWorker that benchmarks use. */
export interface BenchWorker extends LocalWorker {
  readonly pid: number
}

/**
 * The Worker in raw Miniflare, controlled from a child process: Miniflare and wrangler loaded here would make this
 * process's heap ~130 MB, and every major GC (10 MiB messages cause one each) would charge the consoles measured here
 * tens of milliseconds that a real console, with a small heap, never pays. Its console goes to stderr.
 */
export const startBenchWorker = async (): Promise<BenchWorker> => {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bench/lib/worker-child.ts")], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const kill = (): void => void child.kill("SIGKILL")
  process.once("exit", kill)
  const first = await new Promise<string>((resolve, reject) => {
    let text = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      text += d
      const nl = text.indexOf("\n")
      if (nl >= 0) resolve(text.slice(0, nl))
    })
    void exited.then(() => reject(new Error("the worker process exited before it listened")))
  })
  const info = JSON.parse(first) as { url: string; wsUrl: string; signingKey: string }
  let stopped = false
  return {
    ...info,
    pid: child.pid ?? -1,
    mint: (claims) => mintToken(info.signingKey, { ttl: 300, ...claims }),
    restart: () => Promise.reject(new Error("restart is not offered by the bench worker")),
    stop: async () => {
      if (stopped) return
      stopped = true
      child.stdin.end()
      const timer = setTimeout(kill, 10_000)
      await exited
      clearTimeout(timer)
      process.off("exit", kill)
    },
  }
}

export interface ProbeRig {
  readonly worker: LocalWorker
  readonly bridge: BridgeProcess
  readonly probes: ReadonlyArray<ProbeAgent>
  readonly sessions: ReadonlyArray<Session>
  stop(): Promise<void>
}

/**
 * `n` VMs whose chardev ends are probe agents, one bridge process for all of them, and one controller session per VM
 * with the agent connected. `worker` may be shared (scale steps add VMs to one workerd).
 */
export const startProbeRig = async (
  n: number,
  opts: { worker?: LocalWorker; prefix?: string; client?: Partial<ConnectOptions> & { base?: string }; limits?: Record<string, number>; pingIntervalMs?: number } = {},
): Promise<ProbeRig> => {
  const dir = mkdtempSync(join(tmpdir(), "vdr-bench-probes-"))
  const prefix = opts.prefix ?? "vm"
  const worker = opts.worker ?? (await startBenchWorker())
  const probes = await Promise.all(Array.from({ length: n }, (_, i) => ProbeAgent.listen(join(dir, `${i}.sock`))))
  const vms = probes.map((p, i) => ({ id: `${prefix}${i}`, chardev: p.path }))
  const bridge = await startBridge(worker, vms, {
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
    ...(opts.pingIntervalMs === undefined ? {} : { pingIntervalMs: opts.pingIntervalMs }),
  })
  const sessions: Session[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(sessions.map((s) => s.close().catch(() => {})))
    await bridge.stop()
    if (opts.worker === undefined) await worker.stop()
    await Promise.all(probes.map((p) => p.close()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    await Promise.all(probes.map((p) => p.waitForHost()))
    for (const vm of vms) sessions.push(await openClient(worker, vm.id, opts.client))
    await Promise.all(sessions.map((s) => agentReady(s)))
  } catch (e) {
    await stop()
    throw e
  }
  return { worker, bridge, probes, sessions, stop }
}

/** The workerd process serving `worker` (below its worker process): its resident memory, bytes. */
export const workerdRss = (worker: BenchWorker): number => descendants(worker.pid, "workerd").reduce((sum, pid) => sum + rssBytes(pid), 0)
