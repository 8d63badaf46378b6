// Two "hosts" for live migration (docs/migration.md): each a socket directory with its own `vdrelay bridge` process
// configured for the same VM id (its own chardev and QMP sockets there), one workerd, one SDK console. The VM (a real
// QEMU guest with the real spice-vdagent) runs on one host; `migrate()` starts a destination QEMU with `-incoming` on
// the other, runs QMP `migrate` on the source, and records what the console, the bridges and QMP saw. Failure
// variants: migrate_cancel, destination QEMU killed mid-migration, destination bridge down.
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Session, connect } from "../../src/client/index.ts"
import { type BridgeProcess, startBridgeProcess } from "../harness/bridge-process.ts"
import { type LocalWorker, startWorker } from "../harness/worker.ts"
import { AGENT_DEVICE, type Vm, startVm } from "./index.ts"
import { until } from "./stack-vm.ts"

export const TENANT = "vm-tests"
export const VM_ID = "vm-migrate"

export type Variant = "complete" | "cancel" | "kill-destination" | "destination-bridge-down"

export interface Host {
  readonly name: string
  readonly dir: string
  readonly bridge: BridgeProcess
  vm: Vm | undefined
}

/** What one migration looked like from outside. */
export interface MigrationRecord {
  readonly variant: Variant
  /** The source's final MIGRATION status: completed, cancelled, failed. */
  readonly status: string
  /** STOP → RESUME on the destination (ms, host clock), for completed migrations. */
  readonly downtimeMs: number | undefined
  /** The source bridge's handover → the destination bridge's continuation, from their logs (ms). */
  readonly switchMs: number | undefined
  /** Which host runs the VM afterwards. */
  readonly on: string
}

export interface MigrationBed {
  readonly worker: LocalWorker
  readonly hosts: readonly [Host, Host]
  readonly session: Session
  /** The host the VM runs on. */
  readonly active: Host
  readonly vm: Vm
  /** Console state changes and agent flaps seen since start (the console must never notice a migration). */
  readonly seen: { states: string[]; agentDown: number[]; agentUp: number[]; closes: number }
  ready(timeoutMs?: number): Promise<void>
  /** `armed` runs once the destination QEMU is up, just before QMP `migrate` (e.g. waits for a transfer to start). */
  migrate(variant?: Variant, armed?: () => Promise<void>): Promise<MigrationRecord>
  /** The bridges' migration, tunnel and chardev log lines since start, for a failure's report. */
  story(): string[]
  stop(): Promise<void>
}

const STORY = /^(migration|tunnel|chardev|guest-port|relay-error|resume-impossible|rewind)/

/** The stack's poller (test/vm/stack-vm.ts), also the migration round's. */
export { until }

const at = (e: Record<string, unknown> | undefined): number | undefined => (typeof e?.ts === "string" ? Date.parse(e.ts) : undefined)

export const startMigrationBed = async (o: { readonly log?: (l: string) => void } = {}): Promise<MigrationBed> => {
  const log = o.log ?? ((l: string) => console.log(l))
  const undo: Array<() => Promise<unknown>> = []
  const stop = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) await f().catch(() => {})
  }
  try {
    const worker = await startWorker()
    undo.push(() => worker.stop())
    const hosts: Host[] = []
    for (const name of ["host-a", "host-b"]) {
      const dir = await mkdtemp(join(tmpdir(), `vdr-${name}-`))
      undo.push(() => rm(dir, { recursive: true, force: true }))
      const bridge = await startBridgeProcess({
        mint: worker.mint,
        tenant: TENANT,
        name,
        edgeBase: worker.wsUrl,
        vms: [{ id: VM_ID, chardev: join(dir, "vdagent.sock"), qmp: { socket: join(dir, "qmp.sock"), device: AGENT_DEVICE } }],
        reconnect: { baseMs: 50, capMs: 1000 },
        metricsPort: 0,
      })
      undo.push(() => bridge.stop())
      hosts.push({ name, dir, bridge, vm: undefined })
    }
    const [a, b] = hosts as [Host, Host]
    undo.push(async () => {
      for (const h of hosts) await h.vm?.stop()
    })
    a.vm = await startVm({ dir: a.dir })
    log(`[migrate] VM up on ${a.name} in ${(a.vm.bootMs / 1000).toFixed(1)} s (${a.vm.accel})`)
    const session = await connect({
      url: `${worker.wsUrl}/v1/vms/${VM_ID}/console`,
      token: () => worker.mint({ tenant: TENANT, vm: VM_ID, role: "controller", ttl: 3600 }),
      reconnect: { minDelayMs: 50, maxDelayMs: 500 },
    })
    undo.push(() => session.close())
    const seen = { states: [] as string[], agentDown: [] as number[], agentUp: [] as number[], closes: 0 }
    let wasUp = false
    session.on("state", (st) => void seen.states.push(String(st)))
    session.on("close", () => void seen.closes++)
    session.on("agent", (ag) => {
      if (wasUp && !ag.connected) seen.agentDown.push(Date.now())
      if (!wasUp && ag.connected) seen.agentUp.push(Date.now())
      wasUp = ag.connected
    })
    let active: Host = a
    const agentReady = (): boolean => session.state === "open" && session.role === "controller" && session.agent.connected && session.agent.caps !== null
    const ready = (timeoutMs = 120_000): Promise<void> => until(agentReady, "the console sees the guest's agent", timeoutMs)
    await ready(240_000)
    seen.states.length = 0

    const migrate = async (variant: Variant = "complete", armed?: () => Promise<void>): Promise<MigrationRecord> => {
      const src = active
      const dst = src === a ? b : a
      const srcVm = src.vm!
      if (variant === "destination-bridge-down") {
        // The host's bridge service is down (killed; restarted on the same config after the migration).
        process.kill(-dst.bridge.pid, "SIGKILL")
        await dst.bridge.managed.exited
      }
      const uri = `unix:${join(dst.dir, "migrate.sock")}`
      const dstVm = await startVm({ dir: dst.dir, incoming: uri, wait: "qmp" })
      dst.vm = dstVm
      const mark = srcVm.qmp.mark()
      const dmark = dstVm.qmp.mark()
      const handovers = src.bridge.events().filter((e) => e.event === "migration-handover").length
      const continued = dst.bridge.events().filter((e) => e.event === "migration-continued").length
      await armed?.()
      // As libvirt does: MIGRATION events on (the bridges turn them on too).
      await srcVm.qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] })
      await srcVm.qmp.execute("migrate", { uri })
      if (variant === "cancel" || variant === "kill-destination") {
        await srcVm.qmp.waitForEvent("MIGRATION", { from: mark, timeoutMs: 60_000, where: (d) => d.status === "active" })
        // Mid-precopy: a share of RAM is across.
        await new Promise((r) => setTimeout(r, 300))
        if (variant === "cancel") await srcVm.qmp.execute("migrate_cancel")
        else await dstVm.kill()
      }
      const end = await srcVm.qmp.waitForEvent("MIGRATION", { from: mark, timeoutMs: 300_000, where: (d) => d.status === "completed" || d.status === "failed" || d.status === "cancelled" })
      const status = String(end.data.status)
      if (status !== "completed") {
        await dstVm.stop()
        dst.vm = undefined
        return { variant, status, downtimeMs: undefined, switchMs: undefined, on: src.name }
      }
      const stop = srcVm.qmp.events.slice(mark).find((e) => e.event === "STOP")
      const resume = await dstVm.qmp.waitForEvent("RESUME", { from: dmark, timeoutMs: 60_000 })
      // As libvirt does once the migration completed: the source QEMU goes.
      await srcVm.stop()
      src.vm = undefined
      active = dst
      if (variant === "destination-bridge-down") {
        await new Promise((r) => setTimeout(r, 2_000))
        await dst.bridge.restart()
      }
      let switchMs: number | undefined
      if (variant === "complete") {
        // Continued, or (a torn handover) not: the destination then starts the agent connection anew.
        const notContinued = dst.bridge.events().filter((e) => e.event === "migration-not-continued").length
        await until(() => dst.bridge.events().filter((e) => e.event === "migration-continued").length > continued || dst.bridge.events().filter((e) => e.event === "migration-not-continued").length > notContinued, `${dst.name}'s bridge continuing the session`, 60_000)
        const h = at(src.bridge.events().filter((e) => e.event === "migration-handover")[handovers])
        const c = at(dst.bridge.events().filter((e) => e.event === "migration-continued")[continued])
        switchMs = h !== undefined && c !== undefined ? c - h : undefined
      }
      return { variant, status, downtimeMs: stop !== undefined ? resume.at - stop.at : undefined, switchMs, on: dst.name }
    }

    const bed: MigrationBed = {
      worker,
      hosts: [a, b],
      session,
      get active() {
        return active
      },
      get vm() {
        return active.vm!
      },
      seen,
      ready,
      migrate,
      story: () =>
        hosts
          .flatMap((h) => h.bridge.events().filter((e) => STORY.test(String(e.event))).map((e): Record<string, unknown> => ({ ...e, host: h.name })))
          .sort((x, y) => String(x.ts).localeCompare(String(y.ts)))
          .map((e) => JSON.stringify(e)),
      stop,
    }
    return bed
  } catch (err) {
    await stop()
    throw err
  }
}
