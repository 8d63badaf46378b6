// The VM test bed itself: the image boots in a real QEMU, the control port answers, and the real agent inside the
// guest announces itself on the agent chardev socket, as infra/qemu wires it. Boot time is measured and logged. Then
// the lifecycle primitives other VM tests build on: agent restart, holding the port by hand (stale bytes), port unplug
// and replug, system_reset, guest poweroff and QEMU started again on the same sockets.
import { randomBytes } from "node:crypto"
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

  it("restarts the agent inside the guest: the port closes and reopens, and the daemon announces again", async () => {
    const mark = vm.qmp.mark()
    await vm.guest.restartAgent()
    await vm.qmp.waitForEvent("VSERPORT_CHANGE", { from: mark, where: (d) => d.id === "vdport" && d.open === false })
    const hello = await host.expect(T.AnnounceCapabilities, { timeoutMs: 30_000 })
    expect([u32At(hello.body, 0), u32At(hello.body, 4)]).toEqual([1, AGENT_CAPS])
    expect(await handshake(host)).toBe(AGENT_CAPS)
  })

  it("hands bytes the host wrote while the port was closed to the next opener (what capturePort shows)", async () => {
    await vm.guest.stopAgent()
    await vm.waitForAgentPort(false)
    const stale = randomBytes(3000)
    await host.write(stale)
    const [first, second] = await vm.guest.capturePort([{ holdMs: 500 }, { gapMs: 100, holdMs: 300 }])
    expect(Buffer.from(first!).equals(stale)).toBe(true)
    expect(second!.length).toBe(0)
    await vm.guest.startAgent()
    await host.expect(T.AnnounceCapabilities, { timeoutMs: 30_000 })
    expect(await handshake(host)).toBe(AGENT_CAPS)
  })

  it("follows device_del/device_add of the agent port as udev + systemd would: the daemon is back on the same host connection", async () => {
    const mark = vm.qmp.mark()
    await vm.qmp.execute("device_del", { id: "vdport" })
    await vm.qmp.waitForEvent("DEVICE_DELETED", { from: mark, where: (d) => d.device === "vdport", timeoutMs: 60_000 })
    // Without the port the real daemon quits ("Fatal error opening vdagent virtio channel"); the supervisor waits for it.
    await vm.qmp.execute("device_add", { driver: "virtserialport", bus: "vser0.0", chardev: "vdagent", name: "com.redhat.spice.0", id: "vdport" })
    await vm.waitForAgentPort(true)
    expect(host.closed).toBe(false)
    host.clear()
    expect(await handshake(host)).toBe(AGENT_CAPS)
  })

  it("reboots on system_reset with the chardev connection kept, and the agent announces on it again", async () => {
    host.clear()
    const before = await vm.guest.sh("cat /proc/sys/kernel/random/boot_id")
    await vm.reset()
    expect((await vm.guest.sh("cat /proc/sys/kernel/random/boot_id")).equals(before)).toBe(false)
    expect(host.closed).toBe(false)
    expect(await handshake(host)).toBe(AGENT_CAPS)
    console.log(`[vm] system_reset → agent port open ${vm.bootMs} ms`)
  })

  it("powers off from inside (EOF on the chardev socket) and boots again on the same sockets", async () => {
    const mark = vm.qmp.mark()
    const qmp = vm.qmp
    await vm.poweroff()
    expect(qmp.events.slice(mark).map((e) => e.event)).toContain("SHUTDOWN")
    // QEMU has exited, so its end of the chardev socket is gone: EOF reaches the host (spec §12).
    for (let i = 0; i < 100 && !host.closed; i++) await new Promise((r) => setTimeout(r, 50))
    expect(host.closed).toBe(true)
    await vm.restart()
    host = await connectAgent(vm.agentSocket)
    expect(await handshake(host)).toBe(AGENT_CAPS)
    console.log(`[vm] QEMU restarted on the same sockets → agent port open ${vm.bootMs} ms`)
  })
})
