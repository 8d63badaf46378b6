// The chaos rig: every real part of vdrelay wired together on loopback by the test stack (test/harness/stack.ts) — the
// Worker bundle in workerd, the real bridge process (`vdrelay bridge`), the real Debian spice-vdagent behind the emulated
// chardev with a fake QMP monitor following the guest port — and two SDK consoles, with a cuttable TCP proxy in front
// of each link.
import { connect, type Session } from "../../../src/client/index.ts"
import { CutProxy } from "../cut-proxy.ts"
import type { FakeQmp } from "../fake-qmp.ts"
import type { Managed } from "../processes.ts"
import type { RealAgent } from "../real-agent.ts"
import { startStack } from "../stack.ts"
import type { LocalWorker } from "../worker.ts"
import { GuestStream } from "./guest-stream.ts"

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
  readonly worker: LocalWorker
  readonly agent: RealAgent
  readonly qmp: FakeQmp
  readonly bridgeProxy: CutProxy
  /** Every byte handed to the guest, parsed: the whole-stream oracle (duplicates, order, file content). */
  readonly guestStream: GuestStream
  readonly bridge: Managed
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
  const guestStream = new GuestStream()
  const stack = await startStack({
    tenant: TENANT,
    vm: VM,
    agent: "real",
    qmp: true,
    tunnelProxy: true,
    bridge: { name: "chaos-host", reconnect: { baseMs: 50, capMs: 1000 }, metricsPort: 0, logLevel: "info" },
    tokenTtl: 24 * 3600,
    // Tapped before the bridge connects: the oracle must see each guest connection from its first byte.
    onAgent: (agent) => {
      const chardev = agent.real!.chardev
      chardev.on("to-guest", (bytes, connection) => guestStream.feed(bytes, connection))
      // Emitted before the held bytes are handed over, once the new opener is counted; the gap is from the last close.
      let closedAt = performance.now()
      chardev.on("guest-close", () => void (closedAt = performance.now()))
      chardev.on("held-delivered", (bytes) => guestStream.staleHeld(bytes, chardev.counters.guestConnections, performance.now() - closedAt))
    },
  })
  const { worker, bridge } = stack
  const a = await openConsole(worker, "console-a", "controller")
  const b = await openConsole(worker, "console-b", "viewer")
  return {
    worker,
    agent: stack.agent.real!,
    qmp: stack.qmp!,
    bridgeProxy: stack.tunnelProxy!,
    guestStream,
    get bridge() {
      return bridge.managed
    },
    a,
    b,
    bridgeEvents: () => bridge.events(),
    metric: (name) => bridge.metric(name, VM),
    restartBridge: () => bridge.restart(),
    stop: async () => {
      await a.session.close().catch(() => {})
      await b.session.close().catch(() => {})
      await Promise.all([a.proxy.close(), b.proxy.close()])
      await stack.stop()
    },
  }
}
