// The `vdrelay bridge` process: --help, global config errors (exit 2 with the key), per-VM ones (that VM failed), metrics on 127.0.0.1, and SIGTERM closing
// the tunnel with 1001 and the chardev socket, exiting 0; log lines are JSON and never contain the token.
import { type ChildProcess, spawn } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { cleanupAfterEach, startFakeChardev, startFakeRelay, tempDir, until } from "./fixtures.ts"

const BIN = resolve(import.meta.dirname, "../../../bin/vdrelay.mjs")
const TOKEN = "secret-token-value-that-must-not-be-logged"

interface Run {
  readonly child: ChildProcess
  stdout: string
  stderr: string
  code: number | null | undefined
  signal: NodeJS.Signals | null
}

const run = (args: Array<string>): Run => {
  const child = spawn(process.execPath, [BIN, "bridge", ...args], { stdio: ["ignore", "pipe", "pipe"] })
  const r: Run = { child, stdout: "", stderr: "", code: undefined, signal: null }
  child.stdout!.on("data", (d: Buffer) => (r.stdout += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (r.stderr += d.toString()))
  child.on("exit", (code, signal) => {
    r.code = code
    r.signal = signal
  })
  return r
}

const cleanups = cleanupAfterEach()

// Generous: each process compiles the sources with tsx first, and the unit project runs many files at once on a
// loaded machine (not a timing assertion).
const PROCESS_MS = 120_000
const exited = (r: Run): Promise<void> => until(() => r.code !== undefined, "the bridge process to exit", PROCESS_MS)

describe("vdrelay bridge (process)", () => {
  it("--help explains every option and config key", async () => {
    const r = run(["--help"])
    await exited(r)
    expect(r.code).toBe(0)
    for (const word of ["--config", "--metrics-port", "--log-level", "edge", "tokenFile", "chardev", "qmp", "device", "limits", "retainBytes", "reconnect", "pingIntervalMs", "SIGTERM"]) {
      expect(r.stdout).toContain(word)
    }
  }, 300_000)

  it("exits 2 naming the offending key for a config unusable as a whole, or bad flags", async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const bad = join(dir, "bad.json")
    await writeFile(bad, JSON.stringify({ edge: "https://x/{vm}", tokenFile: join(dir, "t"), vms: [{ id: "vm1", chardev: "/tmp/x.sock" }] }))
    const r1 = run(["--config", bad])
    const r2 = run(["--config", join(dir, "absent.json")])
    const r3 = run(["--config"])
    const r4 = run(["--config", bad, "--frobnicate"])
    await Promise.all([exited(r1), exited(r2), exited(r3), exited(r4)])
    expect([r1.code, r2.code, r3.code, r4.code]).toEqual([2, 2, 2, 2])
    expect(r1.stderr).toContain("config error at edge")
    expect(r2.stderr).toContain("absent.json")
    expect(r4.stderr).toContain("frobnicate")
  }, 300_000)

  it("--check exits 2 for a VM's missing token; with --ignore-vm-errors only for a global error", async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const vmProblem = join(dir, "vm-problem.json")
    await writeFile(vmProblem, JSON.stringify({ edge: "wss://x/{vm}", tokenFile: join(dir, "{vm}.token"), vms: [{ id: "vm1", chardev: "/tmp/x.sock" }] }))
    const global = join(dir, "global.json")
    await writeFile(global, JSON.stringify({ edge: "wss://x/{vm}", tokenFile: join(dir, "{vm}.token"), vms: [] }))
    const strict = run(["--check", "--config", vmProblem])
    const tolerant = run(["--check", "--ignore-vm-errors", "--config", vmProblem])
    const globalTolerant = run(["--check", "--ignore-vm-errors", "--config", global])
    await Promise.all([exited(strict), exited(tolerant), exited(globalTolerant)])
    expect([strict.code, tolerant.code, globalTolerant.code]).toEqual([2, 0, 2])
    expect(strict.stderr).toContain("config error at vms[0].tokenFile")
    expect(tolerant.stderr).toContain("VM problem at vms[0].tokenFile")
    expect(tolerant.stdout).toContain("config usable: 1 VM problem")
    expect(globalTolerant.stderr).toContain("config error at vms")
  }, 300_000)

  it("runs with a bad VM entry and a missing token file marked failed (log, metric, /healthz 503 naming them)", async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const config = join(dir, "bridge.json")
    await writeFile(config, JSON.stringify({ edge: "ws://127.0.0.1:9/{vm}", tokenFile: join(dir, "{vm}.token"), vms: [{ id: "vm1", chardev: "nowhere" }, { id: "vm2", chardev: join(dir, "vm2.sock") }] }))
    const r = run(["--config", config, "--metrics-port", "0"])
    cleanups.push(async () => void r.child.kill("SIGKILL"))
    await until(() => r.stderr.includes('"metrics-listening"') && r.stderr.includes('"bridge-started"'), "bridge started", PROCESS_MS)
    const address = /"metrics-listening","address":"([^"]+)"/.exec(r.stderr)?.[1]
    const health = await fetch(`http://${address}/healthz`)
    expect(health.status).toBe(503)
    const body = (await health.json()) as { notUp: Array<string>; vms: Record<string, { state: string; error?: { key: string } }> }
    expect(body.notUp).toEqual(["vm1", "vm2"])
    expect([body.vms.vm1?.state, body.vms.vm1?.error?.key, body.vms.vm2?.state, body.vms.vm2?.error?.key]).toEqual(["failed", "vms[0].chardev", "failed", "vms[1].tokenFile"])
    const metrics = await (await fetch(`http://${address}/metrics`)).text()
    expect(metrics).toContain('vdrelay_bridge_vm_failed{vm="vm1"} 1')
    expect(metrics).toContain('vdrelay_bridge_vm_failed{vm="vm2"} 1')
    const failed = r.stderr.split("\n").filter((l) => l.includes('"vm-failed"')).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(failed.map((l) => [l.vm, l.key])).toEqual([["vm1", "vms[0].chardev"], ["vm2", "vms[1].tokenFile"]])
    r.child.kill("SIGTERM")
    await exited(r)
    expect(r.code).toBe(0)
  }, 300_000)

  it("serves metrics, and on SIGTERM tells the relay (1001), closes the chardev and exits 0", async () => {
    const { dir, cleanup } = await tempDir()
    const chardev = await startFakeChardev(join(dir, "vdagent.sock"))
    const relay = await startFakeRelay()
    cleanups.push(cleanup, () => chardev.close(), () => relay.close())
    await writeFile(join(dir, "token"), `${TOKEN}\n`)
    const config = join(dir, "bridge.json")
    await writeFile(config, JSON.stringify({ edge: relay.url, tokenFile: join(dir, "token"), vms: [{ id: "vm1", chardev: chardev.path }] }))
    const r = run(["--config", config, "--metrics-port", "0"])
    cleanups.push(async () => void r.child.kill("SIGKILL"))
    await until(() => relay.conns[0]?.hello !== undefined, "the bridge's first tunnel", PROCESS_MS)
    const conn = await relay.conn(0)
    conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
    await until(() => chardev.current !== undefined && r.stderr.includes('"tunnel-connected"') && r.stderr.includes('"metrics-listening"'), "bridge up", PROCESS_MS)
    const address = /"metrics-listening","address":"([^"]+)"/.exec(r.stderr)?.[1]
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/)
    const metrics = await (await fetch(`http://${address}/metrics`)).text()
    expect(metrics).toContain('vdrelay_bridge_tunnel_up{vm="vm1"} 1')
    expect(metrics).toContain("# TYPE vdrelay_bridge_agent_bytes_read_total counter")
    // A tunnel that ended (its timers must not outlive it, or the process never exits) and a fresh one.
    conn.ws.terminate()
    const conn1 = await relay.conn(1)
    conn1.send({ t: "welcome", v: 1, epoch: conn1.hello!.epoch, ack: 0, window: 1 << 20 })
    await until(() => r.stderr.split('"tunnel-connected"').length === 3, "second tunnel up", PROCESS_MS)
    const socket = chardev.current!
    let chardevEnded = false
    socket.on("close", () => (chardevEnded = true))
    r.child.kill("SIGTERM")
    await exited(r)
    expect(r.code).toBe(0)
    expect(conn1.closeCode).toBe(1001)
    await until(() => chardevEnded, "chardev socket closed", PROCESS_MS)
    const lines = r.stderr.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.map((l) => l.event)).toEqual(expect.arrayContaining(["bridge-started", "chardev-connected", "tunnel-connected", "signal", "chardev-disconnected", "bridge-stopped"]))
    expect(lines.filter((l) => l.event === "chardev-disconnected")[0]).toMatchObject({ vm: "vm1", cause: "shutdown" })
    expect(r.stderr).not.toContain(TOKEN)
  }, 300_000)
})
