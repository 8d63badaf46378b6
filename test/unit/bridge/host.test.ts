// The bridge host in process, against a fake relay and fake chardevs (UNIX sockets): a VM waiting for its token file
// starts by itself once the file is readable; a reload restarts only the VM whose settings changed (its tunnel closed
// 1001 and reopened, its chardev reconnected to the new path) while the other VM's tunnel and chardev connection stay
// the same objects; a bad entry for a running VM keeps it running; a removed VM's tunnel is closed.
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { type BridgeHost, startBridge } from "../../../src/bridge/bridge.ts"
import { parseConfig } from "../../../src/bridge/config.ts"
import type { LogLevel } from "../../../src/bridge/log.ts"
import { Metrics } from "../../../src/bridge/metrics.ts"
import { cleanupAfterEach, type FakeRelay, type LogLine, type RelayConn, startFakeChardev, startFakeRelay, tempDir, until } from "./fixtures.ts"

const cleanups = cleanupAfterEach()

interface Running {
  readonly host: BridgeHost
  readonly logs: Array<LogLine>
  readonly metrics: Metrics
  readonly configOf: (vms: ReadonlyArray<Record<string, unknown>>) => ReturnType<typeof parseConfig>
}

const start = async (dir: string, relay: FakeRelay, vms: ReadonlyArray<Record<string, unknown>>): Promise<Running> => {
  const configOf = (list: ReadonlyArray<Record<string, unknown>>): ReturnType<typeof parseConfig> =>
    parseConfig(JSON.stringify({ edge: relay.url, tokenFile: join(dir, "{vm}.token"), bridge: "test-host", reconnect: { baseMs: 20, capMs: 200 }, vms: list }), "h")
  const logs: Array<LogLine> = []
  const metrics = new Metrics()
  const logger = { log: (level: LogLevel, event: string, fields = {}) => void logs.push({ level, event, ...fields }) }
  const scope = Effect.runSync(Scope.make())
  const host = await Effect.runPromise(Scope.extend(startBridge(configOf(vms), logger, metrics), scope))
  cleanups.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  return { host, logs, metrics, configOf }
}

/** The relay connections of one VM, in order. */
const connsOf = (relay: FakeRelay, vm: string): Array<RelayConn> => relay.conns.filter((c) => c.path.includes(`/vms/${vm}/`))

const welcome = async (relay: FakeRelay, vm: string, n: number): Promise<RelayConn> => {
  await until(() => connsOf(relay, vm)[n]?.hello !== undefined, `${vm}'s tunnel ${n}`)
  const conn = connsOf(relay, vm)[n]!
  conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
  return conn
}

describe("bridge host (in process): per-VM failure and reload", () => {
  it("a VM whose token file is missing is failed while the other runs, and starts by itself once the file appears", async () => {
    const { dir, cleanup } = await tempDir()
    const relay = await startFakeRelay()
    const [c1, c2] = await Promise.all([startFakeChardev(join(dir, "vm1.sock")), startFakeChardev(join(dir, "vm2.sock"))])
    cleanups.push(cleanup, () => relay.close(), () => c1.close(), () => c2.close())
    await writeFile(join(dir, "vm1.token"), "token-for-vm1\n")
    const b = await start(dir, relay, [{ id: "vm1", chardev: c1.path }, { id: "vm2", chardev: c2.path }])
    expect(b.logs.filter((l) => l.event === "vm-failed").map((l) => [l.vm, l.key])).toEqual([["vm2", "vms[1].tokenFile"]])
    expect(b.metrics.get("vdrelay_bridge_vm_failed", { vm: "vm2" })).toBe(1)
    await welcome(relay, "vm1", 0)
    await until(() => b.host.health().vms.vm1?.state === "up", "vm1 up")
    expect(b.host.health()).toMatchObject({ status: "degraded", notUp: ["vm2"], vms: { vm2: { state: "failed", error: { key: "vms[1].tokenFile" } } } })
    expect(connsOf(relay, "vm2")).toEqual([])
    expect(c2.sockets).toEqual([])

    await writeFile(join(dir, "vm2.token"), "token-for-vm2\n")
    await welcome(relay, "vm2", 0)
    await until(() => b.host.health().status === "ok", "both VMs up", 30_000)
    expect(b.logs.find((l) => l.event === "vm-started" && l.vm === "vm2")?.cause).toBe("token file readable")
    expect(b.metrics.get("vdrelay_bridge_vm_failed", { vm: "vm2" })).toBe(0)
    expect([connsOf(relay, "vm1").length, c1.sockets.length]).toEqual([1, 1])
  }, 60_000)

  it("a reload restarts only the VM whose chardev changed; the other's tunnel and chardev connection are the same", async () => {
    const { dir, cleanup } = await tempDir()
    const relay = await startFakeRelay()
    const [c1, c2, c2b] = await Promise.all(["vm1.sock", "vm2.sock", "vm2-new.sock"].map((f) => startFakeChardev(join(dir, f))))
    cleanups.push(cleanup, () => relay.close(), () => c1!.close(), () => c2!.close(), () => c2b!.close())
    for (const vm of ["vm1", "vm2", "vm3"]) await writeFile(join(dir, `${vm}.token`), `token-for-${vm}\n`)
    const b = await start(dir, relay, [{ id: "vm1", chardev: c1!.path }, { id: "vm2", chardev: c2!.path }])
    const vm1Tunnel = await welcome(relay, "vm1", 0)
    const vm2Tunnel = await welcome(relay, "vm2", 0)
    await until(() => b.host.health().status === "ok" && c1!.current !== undefined && c2!.current !== undefined, "both VMs up")
    const vm1Socket = c1!.current

    const summary = await Effect.runPromise(b.host.reload(b.configOf([{ id: "vm1", chardev: c1!.path }, { id: "vm2", chardev: c2b!.path }])))
    expect(summary).toEqual({ started: [], restarted: ["vm2"], stopped: [], unchanged: ["vm1"], failed: [] })
    await until(() => vm2Tunnel.closeCode !== undefined && c2!.current === undefined, "vm2's old tunnel and chardev closed")
    expect(vm2Tunnel.closeCode).toBe(1001)
    await welcome(relay, "vm2", 1)
    await until(() => c2b!.current !== undefined && b.host.health().status === "ok", "vm2 on its new chardev")
    // vm1: one tunnel, never closed; one chardev connection, the same socket, still open.
    expect([connsOf(relay, "vm1").length, vm1Tunnel.closeCode, c1!.sockets.length, c1!.current]).toEqual([1, undefined, 1, vm1Socket])
    expect(b.metrics.get("vdrelay_bridge_tunnel_connects_total", { vm: "vm1" })).toBe(1)
    // Counters of a restarted VM continue; its gauges read the new connection.
    expect(b.metrics.get("vdrelay_bridge_tunnel_connects_total", { vm: "vm2" })).toBe(2)

    // A bad entry for vm1 keeps it running as it was; vm2 removed: its tunnel closed; vm3 added.
    const next = b.configOf([{ id: "vm1", chardev: "nowhere" }, { id: "vm3", chardev: c2!.path }])
    const second = await Effect.runPromise(b.host.reload(next))
    expect(second).toEqual({ started: ["vm3"], restarted: [], stopped: ["vm2"], unchanged: [], failed: ["vm1"] })
    await welcome(relay, "vm3", 0)
    await until(() => connsOf(relay, "vm2")[1]!.closeCode === 1001, "vm2's tunnel closed")
    await until(() => b.host.health().vms.vm3?.state === "up", "vm3 up")
    expect(b.host.health().vms.vm1).toMatchObject({ state: "up", error: { key: "vms[0].chardev" } })
    expect(Object.keys(b.host.health().vms)).toEqual(["vm1", "vm3"])
    expect(b.metrics.render()).not.toContain('vm="vm2"')
    expect([connsOf(relay, "vm1").length, vm1Tunnel.closeCode, c1!.current]).toEqual([1, undefined, vm1Socket])

    await Effect.runPromise(b.host.reject("(file)", "not valid JSON"))
    expect(b.host.health().reloadError).toEqual({ key: "(file)", detail: "not valid JSON" })
    expect(b.host.status()).toBe("2 up, 0 connecting, 0 failed of 2 VMs; reload rejected: (file): not valid JSON")
  }, 60_000)
})
