// The VM test bed itself: the image boots in a real QEMU, the control port answers, and the real agent inside the
// guest announces itself on the agent chardev socket, as infra/qemu wires it. Boot time is measured and logged.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { MessageType as T, Port } from "../../src/protocol/constants.ts"
import type { HostPeer } from "../harness/host-peer.ts"
import { u32At } from "../harness/host-peer.ts"
import { AGENT_CAPS, connectAgent, handshake } from "./fixtures.ts"
import { type Vm, startVm, vmTestsEnabled } from "./index.ts"

describe.skipIf(!vmTestsEnabled())("real QEMU guest boot", () => {
  let vm: Vm
  let host: HostPeer
  let spawnToAnnounceMs = 0

  beforeAll(async () => {
    // Start waiting only for QEMU itself, and connect as the host at once: the daemon's first ANNOUNCE(request=1)
    // goes to the first host connection (spec §14), so its arrival marks "booted and the agent is up".
    vm = await startVm({ wait: "qmp" })
    host = await connectAgent(vm.agentSocket)
    const hello = await host.expect(T.AnnounceCapabilities, { timeoutMs: 120_000 })
    spawnToAnnounceMs = Date.now() - vm.startedAt
    expect(hello.port).toBe(Port.Client)
    expect([u32At(hello.body, 0), u32At(hello.body, 4)]).toEqual([1, AGENT_CAPS])
    const uptime = await vm.guest.uptime()
    console.log(`[vm] image ${vm.image.key} (${(vm.image.bytes / 1e6).toFixed(1)} MB, ${vm.image.built ? `built in ${vm.image.buildMs} ms` : "cached"}), ${vm.accel}: QEMU start → agent ANNOUNCE ${spawnToAnnounceMs} ms (guest uptime then ${uptime.toFixed(2)} s)`)
  })

  afterAll(async () => {
    await host?.close()
    await vm?.stop()
  })

  it("announces the real agent's caps on the chardev socket and answers a client announce", async () => {
    expect(spawnToAnnounceMs).toBeGreaterThan(0)
    expect(await handshake(host)).toBe(AGENT_CAPS)
  })

  it("reports the guest's agent port open through QMP (query-chardev frontend-open of chardev vdagent)", async () => {
    expect(await vm.qmp.frontendOpen("vdagent")).toBe(true)
    // The control port is the guest's too, and open while its loop runs.
    expect(await vm.qmp.frontendOpen("ctl")).toBe(true)
  })

  it("runs guest commands byte-exact both ways over the control port, concurrently", async () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 131 + 7) & 0xff)
    const [echo, fail, stamp] = await Promise.all([
      vm.guest.exec("cat", { stdin: bytes }),
      vm.guest.exec("echo to-stderr >&2; exit 7"),
      vm.guest.exec("cat /proc/sys/kernel/osrelease"),
    ])
    expect(echo.code).toBe(0)
    expect(Buffer.compare(echo.stdout, Buffer.from(bytes))).toBe(0)
    expect([fail.code, fail.stderr.toString()]).toEqual([7, "to-stderr\n"])
    expect(stamp.stdout.toString().trim()).toBe(vm.image.kernelVersion)
  })

  it("runs Xvfb, spice-vdagentd and spice-vdagent in the guest", async () => {
    expect(await vm.guest.agentStatus()).toEqual({ xvfb: "up", vdagentd: "up", vdagent: "up" })
    expect(await vm.guest.screenSize()).toEqual({ width: 1024, height: 768 })
    const logs = await vm.guest.agentLogs()
    expect(logs.daemon).toMatch(/opening vdagent virtio channel/)
    expect(await vm.guest.syncErrors()).toEqual([])
  })
})
