// What a reload does to each VM, decided from the running set and the config read again: unchanged VMs are kept (not
// restarted), changed ones restart alone, new ones start, gone ones stop, failed ones are tried again, and a running
// VM whose new entry is bad keeps running.
import { describe, expect, it } from "vitest"
import { type BridgeConfig, parseConfig } from "../../../src/bridge/config.ts"
import { type CurrentVm, hostChanges, planReload, vmChanges } from "../../../src/bridge/reload.ts"

const parse = (vms: ReadonlyArray<unknown>, extra: Record<string, unknown> = {}): BridgeConfig =>
  parseConfig(JSON.stringify({ edge: "wss://relay.example.com/v1/vms/{vm}/agent", tokenFile: "/etc/vdrelay/tokens/{vm}.token", vms, ...extra }), "h")

/** The running set a config produces: every valid VM running, every bad entry failed. */
const running = (c: BridgeConfig, failedIds: ReadonlyArray<string> = []): Map<string, CurrentVm> =>
  new Map<string, CurrentVm>([
    ...c.vms.map((vm) => [vm.id, { config: vm, failed: failedIds.includes(vm.id) }] as const),
    ...c.failed.map((f) => [f.vm, { config: undefined, failed: true }] as const),
  ])

const summary = (actions: ReturnType<typeof planReload>): Record<string, string> =>
  Object.fromEntries(
    actions.map((a) => {
      switch (a.kind) {
        case "start":
        case "restart":
          return [a.vm.id, a.kind === "restart" ? `restart(${a.changed.join(",")})` : "start"]
        case "fail":
          return [a.failure.vm, `fail(${a.failure.key})`]
        case "keep-rejected":
          return [a.id, `keep-rejected(${a.failure.key})`]
        default:
          return [a.id, a.kind]
      }
    }),
  )

const a = { id: "a", chardev: "/run/a.sock" }
const b = { id: "b", chardev: "/run/b.sock", qmp: { socket: "/run/b.qmp", device: "vdport" } }
const c = { id: "c", chardev: "127.0.0.1:5903" }

describe("planReload", () => {
  it("keeps every VM of an identical config, whatever the order of entries and keys", () => {
    const before = parse([a, b, c])
    const after = parse([c, { qmp: { device: "vdport", socket: "/run/b.qmp" }, chardev: "/run/b.sock", id: "b" }, a])
    expect(summary(planReload(running(before), after, hostChanges(before, after)))).toEqual({ a: "keep", b: "keep", c: "keep" })
  })

  it("adds a new VM and removes a gone one without touching the rest", () => {
    const before = parse([a, b])
    const after = parse([b, c])
    expect(summary(planReload(running(before), after))).toEqual({ a: "stop", b: "keep", c: "start" })
  })

  it("restarts only the VM whose chardev, QMP, edge or token file path changed, naming what changed", () => {
    const before = parse([a, b, c])
    const after = parse([
      { ...a, chardev: "/run/a2.sock" },
      { ...b, qmp: { ...b.qmp, device: "ua-vdagent" }, tokenFile: "/etc/vdrelay/b.token" },
      c,
    ])
    expect(summary(planReload(running(before), after))).toEqual({ a: "restart(chardev)", b: "restart(qmp,tokenFile)", c: "keep" })
    const edge = parse([a, { ...c, edge: "wss://other.example.com/{vm}" }])
    expect(summary(planReload(running(before), edge))).toEqual({ a: "keep", b: "stop", c: "restart(url)" })
  })

  it("restarts every VM when a host-wide setting the sessions use changed; metricsPort is not one", () => {
    const before = parse([a, b], { reconnect: { baseMs: 250, capMs: 30000 }, metricsPort: 9464 })
    const after = parse([a, b], { reconnect: { baseMs: 500, capMs: 30000 }, metricsPort: 9465 })
    expect(hostChanges(before, after)).toEqual(["reconnect"])
    expect(summary(planReload(running(before), after, hostChanges(before, after)))).toEqual({ a: "restart(reconnect)", b: "restart(reconnect)" })
    expect(hostChanges(before, parse([a, b], { reconnect: { baseMs: 250, capMs: 30000 }, metricsPort: 1 }))).toEqual([])
    expect(hostChanges(before, parse([a, b], { reconnect: { baseMs: 250, capMs: 30000 }, bridge: "hv-2", limits: { frameBytes: 4096 } }))).toEqual([
      "bridge",
      "limits",
    ])
  })

  it("tries a failed VM again: one waiting for its token file, and a bad entry that was fixed", () => {
    const before = parse([a, { id: "b" }])
    expect(before.failed.map((f) => f.vm)).toEqual(["b"])
    const current = running(before, ["a"])
    expect(summary(planReload(current, parse([a, b])))).toEqual({ a: "start", b: "start" })
  })

  it("keeps a running VM whose new entry is bad (reported), and fails a new bad entry", () => {
    const before = parse([a, b])
    const after = parse([{ ...a, chardev: "nowhere" }, b, { id: "d", chardev: "/s", qmp: {} }])
    expect(summary(planReload(running(before), after))).toEqual({ a: "keep-rejected(vms[0].chardev)", b: "keep", d: "fail(vms[2].qmp.socket)" })
  })

  it("stops a VM whose entry lost its id (it is no longer that VM) and fails the entry by its place", () => {
    const before = parse([a, b])
    const after = parse([{ chardev: "/run/a.sock" }, b])
    expect(summary(planReload(running(before), after))).toEqual({ a: "stop", b: "keep", "vms[0]": "fail(vms[0].id)" })
  })

  it("vmChanges ignores the entry's place and names each setting that differs", () => {
    const one = parse([a, b]).vms[1]!
    const two = parse([b]).vms[0]!
    expect([one.at, two.at]).toEqual(["vms[1]", "vms[0]"])
    expect(vmChanges(one, two)).toEqual([])
    expect(vmChanges(one, parse([{ ...b, chardev: "tcp:h:1" }]).vms[0]!)).toEqual(["chardev"])
  })
})
