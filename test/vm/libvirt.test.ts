// The bridge learns its VM and the guest port's state from a real libvirtd (Debian 12's libvirt 9.0, qemu driver,
// TCG; a private daemon, libvirt-daemon.ts): a domain defined with the vdrelay metadata and an agent
// <channel type='unix'> (no <qemu:commandline>, no second monitor) boots the project's guest image with the real
// spice-vdagent; the bridge (config: only `libvirt`, no `vms`) finds it when it starts, connects its channel socket,
// and the console does a clipboard round trip both ways through workerd; an agent restart in the guest reaches the
// bridge as VSERPORT_CHANGE through libvirt (port closed, then open) and the round trip works again; a bridge on the
// read-only socket without monitor events sees the same from the XML alone; the domain's destroy stops the VM in the
// bridge. libvirt must not mark the domain tainted by anything the bridge does.
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { VDRELAY_XMLNS } from "../../src/bridge/libvirt-domain.ts"
import { type Session, connect } from "../../src/client/index.ts"
import { type Managed, spawnGroup } from "../harness/processes.ts"
import { findBinary } from "../harness/real-agent.ts"
import { type LocalWorker, startWorker } from "../harness/worker.ts"
import { ControlClient, Guest, guestImage, vmTestsEnabled } from "./index.ts"
import { type LibvirtDaemon, libvirtMissing, startLibvirtd } from "./libvirt-daemon.ts"

const ROOT = resolve(import.meta.dirname, "../..")
const TENANT = "vm-tests"
const VM_ID = "lv-web"
const DOMAIN = "vdrelay-lv-web"
const enabled = vmTestsEnabled() && (process.env.CI !== undefined || libvirtMissing().length === 0)
if (!enabled) console.warn(`[libvirt.test] SKIPPED: ${libvirtMissing().join("; ") || "VM test dependencies missing"} (bash infra/install-deps.sh; with CI set this fails)`)

/** The domain as an operator writes it (infra/libvirt/domain-example.xml), with the test image's direct kernel boot. */
const domainXml = (dir: string): string => {
  const image = guestImage()
  return `<domain type='qemu'>
  <name>${DOMAIN}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <metadata>
    <vdrelay:vm xmlns:vdrelay='${VDRELAY_XMLNS}' id='${VM_ID}'/>
  </metadata>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>${image.kernel}</kernel>
    <initrd>${image.initrd}</initrd>
    <cmdline>console=ttyS0 quiet loglevel=3 panic=-1</cmdline>
  </os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <devices>
    <emulator>${findBinary("qemu-system-x86_64")}</emulator>
    <controller type='virtio-serial' index='0'/>
    <channel type='unix'>
      <source mode='bind' path='${dir}/vdagent.sock'/>
      <target type='virtio' name='com.redhat.spice.0'/>
      <alias name='ua-vdagent'/>
    </channel>
    <channel type='unix'>
      <source mode='bind' path='${dir}/ctl.sock'/>
      <target type='virtio' name='org.vdrelay.ctl'/>
    </channel>
    <serial type='file'><source path='${dir}/console.log'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`
}

const until = async (pred: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe.skipIf(!enabled)("bridge with a real libvirtd", () => {
  let daemon: LibvirtDaemon
  let worker: LocalWorker
  let bridge: Managed
  let guest: Guest
  let control: ControlClient
  let session: Session
  let dir: string
  const undo: Array<() => Promise<unknown> | unknown> = []

  /** The bridge's JSON log events so far. */
  const events = (): Array<Record<string, unknown>> =>
    bridge.log.lines.flatMap((l) => {
      try {
        return l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : []
      } catch {
        return []
      }
    })
  const portLines = (from: number) => events().slice(from).filter((e) => e.event === "guest-port" && e.vm === VM_ID)
  const writeConfig = (libvirt: Record<string, unknown>): void => {
    const config = { bridge: "lv-host", edge: `${worker.wsUrl}/v1/vms/{vm}/agent`, tokenFile: join(dir, "{vm}.token"), reconnect: { baseMs: 50, capMs: 1000 }, libvirt }
    writeFileSync(join(dir, "bridge.json"), JSON.stringify(config, null, 2))
  }
  const startBridge = (): Managed => spawnGroup("bridge", process.execPath, [join(ROOT, "bin/vdrelay.mjs"), "bridge", "--config", join(dir, "bridge.json"), "--log-level", "debug"], { cwd: ROOT })
  const agentState = async (): Promise<string | undefined> => /name='com\.redhat\.spice\.0' state='(\w+)'/.exec(await daemon.virsh(["dumpxml", DOMAIN]))?.[1]

  beforeAll(async () => {
    try {
      daemon = await startLibvirtd()
      undo.push(() => daemon.stop())
      dir = mkdtempSync(join(tmpdir(), "vdr-lv-vm-"))
      undo.push(() => rmSync(dir, { recursive: true, force: true }))
      writeFileSync(join(dir, "domain.xml"), domainXml(dir))
      await daemon.virsh(["define", join(dir, "domain.xml")])
      worker = await startWorker()
      undo.push(() => worker.stop())
      writeFileSync(join(dir, `${VM_ID}.token`), `${await worker.mint({ tenant: TENANT, vm: VM_ID, role: "bridge", ttl: 3600 })}\n`, { mode: 0o600 })
      writeConfig({ uri: daemon.uri, virsh: findBinary("virsh"), reconcileMs: 5000 })
      bridge = startBridge()
      undo.push(() => bridge.stop(5000))
      await bridge.log.waitFor(/"event":"libvirt-connected".*"stream":"qemu-monitor-event"/, { timeoutMs: 60_000 })
      // Started after the bridge: it must learn of the domain from libvirt's events, not from a list it was given.
      await daemon.virsh(["start", DOMAIN])
      await bridge.log.waitFor(/"event":"libvirt-vm-started"/, { timeoutMs: 60_000 })
      control = await ControlClient.connect(join(dir, "ctl.sock"), 30_000)
      undo.push(() => control.close())
      guest = new Guest(control)
      await guest.sh("true", { timeoutMs: 240_000 })
      session = await connect({
        url: `${worker.wsUrl}/v1/vms/${VM_ID}/console`,
        token: () => worker.mint({ tenant: TENANT, vm: VM_ID, role: "controller", ttl: 3600 }),
        reconnect: { minDelayMs: 50, maxDelayMs: 500 },
      })
      undo.push(() => session.close())
    } catch (e) {
      for (const f of undo.splice(0).reverse()) await Promise.resolve(f()).catch(() => {})
      throw e
    }
  }, 420_000)

  afterAll(async () => {
    for (const f of undo.splice(0).reverse()) await Promise.resolve(f()).catch(() => {})
  }, 120_000)

  const agentReady = (): boolean => session.state === "open" && session.agent.connected && session.agent.caps !== null

  /** Clipboard console → guest (an X paste in the guest) and guest → console (the console fetches the grab). */
  const roundTrip = async (tag: string): Promise<void> => {
    await until(agentReady, "the console to see the guest's agent", 240_000)
    const toGuest = `to-guest ${tag} ${randomBytes(6).toString("hex")} ✓`
    await session.setClipboardText(toGuest)
    let pasted = ""
    await until(async () => (pasted = (await guest.getClipboard({ timeoutMs: 20_000 }).catch(() => Buffer.from(""))).toString("utf8")) === toGuest, `the guest to paste ${JSON.stringify(toGuest)} (last: ${JSON.stringify(pasted)})`, 90_000)
    const toConsole = `to-console ${tag} ${randomBytes(6).toString("hex")} ✓`
    let grabbed = 0
    const off = session.on("clipboard-grab", () => void grabbed++)
    try {
      await guest.setClipboard(toConsole)
      await until(() => grabbed > 0, "the console to see the guest's grab", 90_000)
      expect(await session.requestClipboardText()).toBe(toConsole)
    } finally {
      off()
    }
  }

  it("finds the domain through libvirt: its socket from the live XML, the port level libvirt reports", async () => {
    const started = events().find((e) => e.event === "libvirt-vm-started")
    expect(started).toMatchObject({ vm: VM_ID, domain: DOMAIN, chardev: join(dir, "vdagent.sock"), device: "ua-vdagent" })
    await until(async () => (await agentState()) === "connected", "libvirt's channel state 'connected'", 240_000)
    await until(() => portLines(0).some((e) => e.port === "open"), "the bridge to report the port open", 60_000)
    await roundTrip("first")
  }, 600_000)

  it("an agent restart in the guest reaches the bridge through libvirt: closed, then open, and the relay works again", async () => {
    const from = events().length
    let lost = 0
    const off = session.on("agent", (a) => {
      if (!a.connected) lost++
    })
    await guest.stopAgent()
    await until(() => portLines(from).some((e) => e.port === "closed"), "the bridge to see the port close", 60_000)
    // Learnt from QEMU's event passed on by libvirt, not from a later XML read ("reconcile", "confirm …").
    expect(portLines(from).find((e) => e.port === "closed")?.cause).toBe("VSERPORT_CHANGE via libvirt")
    await until(async () => (await agentState()) === "disconnected", "libvirt's channel state 'disconnected'", 60_000)
    await until(() => lost > 0, "the console to hear the agent is gone", 60_000)
    off()
    // Guest.startAgent's 40 s is short for GTK's start under TCG at load 15+.
    await guest.sh("/usr/libexec/vdrelay/agent start", { timeoutMs: 180_000 })
    await until(() => portLines(from).some((e, i, all) => e.port === "open" && all.slice(0, i).some((c) => c.port === "closed")), "the bridge to see the port open again", 60_000)
    expect(await agentState()).toBe("connected")
    await roundTrip("after restart")
  }, 600_000)

  it("read-only (monitorEvents false, the read-only socket): the port from the XML alone, an agent restart still seen", async () => {
    await bridge.stop(5000)
    writeConfig({ uri: daemon.uri.replace("libvirt-sock", "libvirt-sock-ro"), virsh: findBinary("virsh"), monitorEvents: false, reconcileMs: 1000 })
    bridge = startBridge()
    await bridge.log.waitFor(/"event":"libvirt-vm-started"/, { timeoutMs: 60_000 })
    await until(() => portLines(0).some((e) => e.port === "open"), "the read-only bridge to report the port open", 60_000)
    await roundTrip("read-only")
    const from = events().length
    await guest.stopAgent()
    await until(() => portLines(from).some((e) => e.port === "closed"), "the read-only bridge to see the port close", 60_000)
    expect(portLines(from).find((e) => e.port === "closed")?.cause).toBe("reconcile")
    await guest.sh("/usr/libexec/vdrelay/agent start", { timeoutMs: 180_000 })
    await until(() => portLines(from).some((e, i, all) => e.port === "open" && all.slice(0, i).some((c) => c.port === "closed")), "the read-only bridge to see the port open again", 60_000)
    await roundTrip("read-only after restart")
  }, 600_000)

  it("nothing the bridge does taints the domain, and a destroyed domain stops its VM", async () => {
    // This set-up runs QEMU as root (high-privileges); the bridge's monitor-event passthrough adds no taint.
    const info = await daemon.virsh(["dominfo", DOMAIN])
    expect(info).not.toMatch(/custom-monitor|custom-argv|custom-ga-command/)
    const from = events().length
    let lost = 0
    const off = session.on("agent", (a) => {
      if (!a.connected) lost++
    })
    await daemon.virsh(["destroy", DOMAIN])
    await until(() => events().slice(from).some((e) => e.event === "libvirt-vm-stopped" && e.vm === VM_ID), "the bridge to stop the VM", 60_000)
    await until(() => lost > 0, "the console to hear the agent is gone", 60_000)
    off()
  }, 300_000)
})
