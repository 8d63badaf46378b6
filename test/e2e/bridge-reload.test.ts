// A host keeps its other VMs up, with real processes: the real Worker bundle on workerd, `vdrelay bridge` as its own
// process, and two (then three) VMs, each the agent simulator behind an emulated chardev. One VM's token file is
// missing: that VM is failed (log, metric, /healthz 503 naming it) while the other carries a clipboard round trip
// through the SDK. Then the token is written and a VM added to the config, SIGHUP: both come up, and the healthy VM's
// tunnel and chardev were not touched — the bridge's connect counters for it stay at 1, and its relay saw no second
// bridge attach and no link closed. A config broken as a whole is rejected on SIGHUP with every VM kept; removing a VM
// stops it alone.
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, type Session } from "../../src/client/index.ts"
import { type AgentSimHandle, startAgentSim } from "../harness/agent-sim-server.ts"
import { type Managed, spawnGroup } from "../harness/processes.ts"
import { type LocalWorker, startWorker } from "../harness/worker.ts"

const ROOT = resolve(import.meta.dirname, "../..")
const TENANT = "acme"
const [A, B, C] = ["reload-a", "reload-b", "reload-c"] as const

const until = async (pred: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

interface HealthBody {
  readonly status: string
  readonly notUp: ReadonlyArray<string>
  readonly vms: Record<string, { readonly state: string; readonly chardev: boolean; readonly error?: { readonly key: string } }>
  readonly reloadError?: { readonly key: string }
}

describe("bridge reload: one VM's problem keeps the others up; SIGHUP applies the config VM by VM", () => {
  let worker: LocalWorker
  const agents = new Map<string, AgentSimHandle>()
  const consoles: Array<Session> = []
  let dir: string
  let bridge: Managed

  const config = (vms: ReadonlyArray<string>): string =>
    JSON.stringify({
      bridge: "reload-host",
      edge: `${worker.wsUrl}/v1/vms/{vm}/agent`,
      tokenFile: join(dir, "{vm}.token"),
      reconnect: { baseMs: 100, capMs: 2000 },
      vms: vms.map((id) => ({ id, chardev: agents.get(id)!.hostSocketPath })),
    })
  const writeToken = async (vm: string): Promise<void> =>
    writeFile(join(dir, `${vm}.token`), `${await worker.mint({ tenant: TENANT, vm, role: "bridge", ttl: 3600 })}\n`, { mode: 0o600 })

  const events = (): Array<Record<string, unknown>> =>
    bridge.log.lines.flatMap((l) => {
      try {
        return l.startsWith("{") ? [JSON.parse(l) as Record<string, unknown>] : []
      } catch {
        return []
      }
    })
  const address = (): string => events().find((e) => e.event === "metrics-listening")!.address as string
  const metric = async (name: string, vm: string): Promise<number> => {
    const text = await (await fetch(`http://${address()}/metrics`)).text()
    const m = new RegExp(`^${name}\\{vm="${vm}"\\} (-?\\d+)$`, "m").exec(text)
    return m === null ? 0 : Number(m[1])
  }
  const health = async (): Promise<{ code: number; body: HealthBody }> => {
    const res = await fetch(`http://${address()}/healthz`)
    return { code: res.status, body: (await res.json()) as HealthBody }
  }
  /** The relay's view of a VM (operator API): bridge attaches and closed links identify a reconnect. */
  const relayStatus = async (vm: string): Promise<{ attaches: number; closed: number }> => {
    const token = await worker.mint({ tenant: TENANT, vm, role: "operator" })
    const s = (await (await fetch(`${worker.url}/v1/vms/${vm}/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      counters: Record<string, number>
      edge: Record<string, number>
    }
    const closed = Object.entries(s.edge).filter(([k]) => k.startsWith("links.closed.")).reduce((n, [, v]) => n + v, 0)
    return { attaches: s.counters.vdrelay_bridge_attaches_total ?? 0, closed }
  }
  const hangup = async (vms: ReadonlyArray<string> | string): Promise<Record<string, unknown>> => {
    await writeFile(join(dir, "bridge.json"), typeof vms === "string" ? vms : config(vms))
    const from = bridge.log.mark()
    process.kill(bridge.pid, "SIGHUP")
    return JSON.parse(await bridge.log.waitFor(/"event":"reload(-rejected)?"/, { from, timeoutMs: 60_000 })) as Record<string, unknown>
  }
  /** A console on `vm` sees the agent, and a clipboard round trip goes both ways through the bridge. */
  const roundTrip = async (vm: string, tag: string): Promise<void> => {
    const token = await worker.mint({ tenant: TENANT, vm, role: "controller" })
    const client = await connect({ url: `${worker.wsUrl}/v1/vms/${vm}/console`, token, role: "controller", clientName: `reload-${tag}`, reconnect: false })
    consoles.push(client)
    await until(() => client.agent.connected && client.agent.caps !== null, `the console of ${vm} sees the agent`)
    const agent = agents.get(vm)!
    await client.setClipboardText(`console → ${vm} (${tag})`)
    await until(async () => (await agent.getClipboard()) === `console → ${vm} (${tag})`, `${vm}'s guest clipboard`)
    agent.setClipboard(`${vm} → console (${tag})`)
    await until(async () => (await client.requestClipboardText()) === `${vm} → console (${tag})`, `the paste from ${vm}`)
  }

  beforeAll(async () => {
    worker = await startWorker()
    for (const vm of [A, B, C]) agents.set(vm, await startAgentSim())
    dir = await mkdtemp(join(tmpdir(), "vdrelay-reload-"))
    await writeToken(A)
    // B's token file is missing: a typo in provisioning, a token not yet delivered.
    await writeFile(join(dir, "bridge.json"), config([A, B]))
    bridge = spawnGroup("bridge", process.execPath, [join(ROOT, "bin/vdrelay.mjs"), "bridge", "--config", join(dir, "bridge.json"), "--metrics-port", "0", "--log-level", "info"], { cwd: ROOT })
    // Every VM's sessions are started (or the VM marked failed) once bridge-started is logged.
    await bridge.log.waitFor(/"event":"bridge-started"/, { timeoutMs: 120_000 })
  }, 300_000)

  afterAll(async () => {
    if (bridge !== undefined && !bridge.running()) process.stderr.write(`bridge exited early; its log:\n${bridge.log.lines.join("\n")}\n`)
    for (const c of consoles) await c.close().catch(() => undefined)
    await bridge?.stop(5000)
    for (const a of agents.values()) await a.stop()
    await worker?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it("runs the VM with a token while the other is failed: log, metric, /healthz 503 naming it", async () => {
    expect(bridge.running()).toBe(true)
    const failed = events().filter((e) => e.event === "vm-failed")
    expect(failed.map((e) => [e.vm, e.key])).toEqual([[B, "vms[1].tokenFile"]])
    expect(await metric("vdrelay_bridge_vm_failed", B)).toBe(1)
    await until(async () => (await metric("vdrelay_bridge_tunnel_up", A)) === 1, `${A}'s tunnel`)
    await roundTrip(A, "before")
    const h = await health()
    expect(h.code).toBe(503)
    expect(h.body.notUp).toEqual([B])
    expect([h.body.vms[A]?.state, h.body.vms[B]?.state, h.body.vms[B]?.error?.key]).toEqual(["up", "failed", "vms[1].tokenFile"])
  }, 120_000)

  it("SIGHUP after the token is written and a VM added: both come up, the healthy VM's tunnel is not touched", async () => {
    const before = { tunnel: await metric("vdrelay_bridge_tunnel_connects_total", A), chardev: await metric("vdrelay_bridge_chardev_connects_total", A), relay: await relayStatus(A) }
    expect(before.tunnel).toBe(1)
    expect(before.chardev).toBe(1)
    expect(before.relay.attaches).toBe(1)
    await writeToken(B)
    await writeToken(C)
    const reload = await hangup([A, B, C])
    expect(reload.event).toBe("reload")
    expect(reload.unchanged).toBe(A)
    expect(reload.started).toBe(`${B} ${C}`)
    await until(async () => (await health()).code === 200, "every VM up")
    await roundTrip(B, "after reload")
    await roundTrip(C, "added")
    await roundTrip(A, "after reload")
    expect(await metric("vdrelay_bridge_tunnel_connects_total", A)).toBe(before.tunnel)
    expect(await metric("vdrelay_bridge_chardev_connects_total", A)).toBe(before.chardev)
    expect(await relayStatus(A)).toEqual(before.relay)
    expect(events().filter((e) => e.vm === A && ["vm-stopped", "tunnel-retry", "chardev-disconnected"].includes(e.event as string))).toEqual([])
    expect(await metric("vdrelay_bridge_vm_failed", B)).toBe(0)
  }, 180_000)

  it("a config broken as a whole is rejected on SIGHUP, every VM kept; removing a VM stops it alone", async () => {
    const before = await Promise.all([A, B].map(async (vm) => [await metric("vdrelay_bridge_tunnel_connects_total", vm), (await relayStatus(vm)).attaches]))
    const rejected = await hangup(`{"edge": "https://relay.example.com/{vm}", "vms": [`)
    expect([rejected.event, rejected.key]).toEqual(["reload-rejected", "(file)"])
    const h = await health()
    expect([h.code, h.body.reloadError?.key, h.body.notUp]).toEqual([200, "(file)", []])
    const removed = await hangup([A, B])
    expect([removed.event, removed.stopped, removed.unchanged]).toEqual(["reload", C, `${A} ${B}`])
    await until(async () => (await relayStatus(C)).closed > 0, `${C}'s bridge link closed at the relay`)
    const after = await health()
    expect([after.code, Object.keys(after.body.vms), after.body.reloadError]).toEqual([200, [A, B], undefined])
    expect(await metric("vdrelay_bridge_tunnel_up", C)).toBe(0)
    expect(await Promise.all([A, B].map(async (vm) => [await metric("vdrelay_bridge_tunnel_connects_total", vm), (await relayStatus(vm)).attaches]))).toEqual(before)
    await roundTrip(B, "after removal")
  }, 180_000)
})
