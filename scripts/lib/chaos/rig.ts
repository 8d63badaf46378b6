// The chaos rig: every real part of vdrelay wired together on loopback — the Worker bundle in workerd (test/harness/
// worker.ts), the real bridge process (`vdrelay bridge`), the real Debian spice-vdagent behind the emulated chardev with a
// fake QMP monitor following the guest port, and two SDK consoles — with a cuttable TCP proxy in front of each link.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { connect, type Session } from "../../../src/client/index.ts"
import { startFakeQmp, type FakeQmp } from "../../../test/harness/fake-qmp.ts"
import { type Managed, spawnGroup } from "../../../test/harness/processes.ts"
import { type RealAgent, startRealAgent } from "../../../test/harness/real-agent.ts"
import { type LocalWorker, startWorker } from "../../../test/harness/worker.ts"
import { CutProxy } from "../../../test/harness/cut-proxy.ts"

const ROOT = resolve(import.meta.dirname, "../../..")
export const TENANT = "chaos"
export const VM = "vm-chaos"

/** One SDK console and what it reported (every notice and error is a drop reported to it). */
export interface Console {
  readonly name: string
  readonly session: Session
  readonly proxy: CutProxy
  readonly reports: string[]
}

export interface Rig {
  readonly dir: string
  readonly worker: LocalWorker
  readonly agent: RealAgent
  readonly qmp: FakeQmp
  readonly bridgeProxy: CutProxy
  bridge: Managed
  readonly a: Console
  readonly b: Console
  bridgeEvents(): Array<Record<string, unknown>>
  metric(name: string): Promise<number>
  /** Restarts the bridge process (the host's bridge service restarting); its log continues in the same lines. */
  restartBridge(): Promise<void>
  stop(): Promise<void>
}

export const until = async (pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const startBridge = (dir: string, log?: Managed["log"]): Managed =>
  spawnGroup("bridge", process.execPath, [join(ROOT, "bin/vdrelay.mjs"), "bridge", "--config", join(dir, "bridge.json"), "--metrics-port", "0", "--log-level", "info"], log === undefined ? {} : { log })

const openConsole = async (worker: LocalWorker, name: string, role: "controller" | "viewer"): Promise<Console> => {
  const proxy = await CutProxy.start(Number(new URL(worker.url).port))
  const reports: string[] = []
  const session = await connect({
    url: `ws://127.0.0.1:${proxy.port}/v1/vms/${VM}/console`,
    token: () => worker.mint({ tenant: TENANT, vm: VM, role: "controller", ttl: 3600 }),
    role,
    clientName: name,
    reconnect: { minDelayMs: 50, maxDelayMs: 500 },
  })
  session.on("notice", (n) => reports.push(`notice ${n.code}${n.id === undefined ? "" : ` id ${n.id}`}: ${n.detail}`))
  session.on("error", (e) => reports.push(`error ${e.reason}: ${e.message}`))
  return { name, session, proxy, reports }
}

export const startRig = async (): Promise<Rig> => {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"
  process.env.WRANGLER_SEND_METRICS = "false"
  process.env.DO_NOT_TRACK = "1"
  const dir = mkdtempSync(join(tmpdir(), "vdrelay-chaos-"))
  const worker = await startWorker()
  const agent = await startRealAgent()
  const qmp = await startFakeQmp({ path: join(dir, "qmp.sock"), device: "vdport", chardev: "vdagent", open: true, rateLimitMs: 1000 })
  agent.chardev.on("guest-open", () => qmp.setGuestOpen(true))
  agent.chardev.on("guest-close", () => qmp.setGuestOpen(false))
  const bridgeProxy = await CutProxy.start(Number(new URL(worker.url).port))
  writeFileSync(join(dir, "bridge.token"), `${await worker.mint({ tenant: TENANT, vm: VM, role: "bridge", ttl: 24 * 3600 })}\n`)
  writeFileSync(
    join(dir, "bridge.json"),
    JSON.stringify({
      bridge: "chaos-host",
      edge: `ws://127.0.0.1:${bridgeProxy.port}/v1/vms/{vm}/agent`,
      tokenFile: join(dir, "bridge.token"),
      reconnect: { baseMs: 50, capMs: 1000 },
      vms: [{ id: VM, chardev: agent.hostSocketPath, qmp: { socket: join(dir, "qmp.sock"), device: "vdport" } }],
    }),
  )
  let bridge = startBridge(dir)
  const events = (): Array<Record<string, unknown>> =>
    bridge.log.lines.filter((l) => l.startsWith("{")).flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>]
      } catch {
        return []
      }
    })
  await until(() => events().some((e) => e.event === "metrics-listening"), "the bridge's metrics endpoint")
  const metric = async (name: string): Promise<number> => {
    const address = [...events()].reverse().find((e) => e.event === "metrics-listening")?.address as string | undefined
    if (address === undefined) return -1
    const text = await fetch(`http://${address}/metrics`).then((r) => r.text()).catch(() => "")
    const m = new RegExp(`^${name}\\{vm="${VM}"\\} (-?\\d+)$`, "m").exec(text)
    return m === null ? 0 : Number(m[1])
  }
  const a = await openConsole(worker, "console-a", "controller")
  const b = await openConsole(worker, "console-b", "viewer")
  const rig: Rig = {
    dir,
    worker,
    agent,
    qmp,
    bridgeProxy,
    bridge,
    a,
    b,
    bridgeEvents: events,
    metric,
    restartBridge: async () => {
      await rig.bridge.stop(3000)
      rig.bridge = bridge = startBridge(dir, rig.bridge.log)
    },
    stop: async () => {
      await a.session.close().catch(() => {})
      await b.session.close().catch(() => {})
      await rig.bridge.stop(3000)
      await Promise.all([a.proxy.close(), b.proxy.close(), bridgeProxy.close()])
      await qmp.close()
      await agent.stop()
      await worker.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return rig
}
