// The systemd notification protocol as the bridge speaks it, against a real AF_UNIX SOCK_DGRAM listener (python3's
// socket module, bound where $NOTIFY_SOCKET says: a path, or an '@' abstract name): READY=1 with STATUS= once started,
// WATCHDOG=1 every half $WATCHDOG_USEC, RELOADING=1 with a CLOCK_MONOTONIC MONOTONIC_USEC then READY=1 around a SIGHUP
// reload, STOPPING=1 on SIGTERM; the whole datagram stream is judged in order.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { watchdogInterval } from "../../../src/bridge/notify.ts"
import { type Datagram, listenNotify } from "../../harness/notify-listener.ts"
import { cleanupAfterEach, tempDir, until } from "./fixtures.ts"

const BIN = resolve(import.meta.dirname, "../../../bin/vdrelay.mjs")

const cleanups = cleanupAfterEach()

/** The kind of each datagram, watchdog pings folded: the order the service manager sees. */
const kinds = (ds: ReadonlyArray<Datagram>): Array<string> =>
  ds
    .map((d) => (d.fields.READY === "1" ? "READY" : d.fields.RELOADING === "1" ? "RELOADING" : d.fields.STOPPING === "1" ? "STOPPING" : d.fields.WATCHDOG === "1" ? "WATCHDOG" : "STATUS"))
    .filter((k, i, all) => k !== "WATCHDOG" || all[i - 1] !== "WATCHDOG")

describe("systemd notifications (NOTIFY_SOCKET, a real datagram listener)", () => {
  it("watchdogInterval: half of WATCHDOG_USEC, only for the process WATCHDOG_PID names", () => {
    expect(watchdogInterval({ WATCHDOG_USEC: "30000000" }, 7)).toBe(15_000)
    expect(watchdogInterval({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "7" }, 7)).toBe(15_000)
    expect(watchdogInterval({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "8" }, 7)).toBeUndefined()
    expect(watchdogInterval({}, 7)).toBeUndefined()
    expect(watchdogInterval({ WATCHDOG_USEC: "0" }, 7)).toBeUndefined()
    expect(watchdogInterval({ WATCHDOG_USEC: "x" }, 7)).toBeUndefined()
  })

  it.each([
    ["a socket path", (dir: string) => join(dir, "notify.sock")],
    ["an abstract '@' address", () => `@vdrelay-notify-test-${randomBytes(6).toString("hex")}`],
  ])("at %s: READY, WATCHDOG pings, RELOADING+MONOTONIC_USEC then READY on SIGHUP, STOPPING on SIGTERM", async (_what, where) => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const address = where(dir)
    const listener = listenNotify(address)
    cleanups.push(async () => listener.stop())
    await until(listener.bound, "the listener bound", 30_000)
    await writeFile(join(dir, "vm1.token"), "not-a-real-token\n")
    const config = join(dir, "bridge.json")
    // A VM with a token file and one without: ready means every VM started or marked failed, not connected.
    await writeFile(config, JSON.stringify({ edge: "ws://127.0.0.1:9/{vm}", tokenFile: join(dir, "{vm}.token"), vms: [{ id: "vm1", chardev: join(dir, "none.sock") }, { id: "vm2", chardev: join(dir, "none2.sock") }] }))
    const bridge = spawn(process.execPath, [BIN, "bridge", "--config", config], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NOTIFY_SOCKET: address, WATCHDOG_USEC: "1000000" },
    })
    let stderr = ""
    bridge.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    let exited: number | null | undefined
    bridge.on("exit", (code) => (exited = code))
    cleanups.push(async () => void bridge.kill("SIGKILL"))

    await until(() => listener.datagrams.some((d) => d.fields.READY === "1"), "READY=1", 60_000)
    expect(stderr).toContain('"bridge-started"')
    const ready = listener.datagrams.find((d) => d.fields.READY === "1")!
    expect(ready.fields.STATUS).toBe("0 up, 1 connecting, 1 failed of 2 VMs")
    // Watchdog every 0.5 s: wait for a few, from the event loop of a process that is busy connecting.
    await until(() => listener.datagrams.filter((d) => d.fields.WATCHDOG === "1").length >= 3, "three WATCHDOG=1", 60_000)

    bridge.kill("SIGHUP")
    await until(() => listener.datagrams.filter((d) => d.fields.READY === "1").length === 2, "READY=1 after the reload", 60_000)
    const reloading = listener.datagrams.find((d) => d.fields.RELOADING === "1")!
    // MONOTONIC_USEC is CLOCK_MONOTONIC when the reload began: before the listener received it, and not long before.
    const usec = Number(reloading.fields.MONOTONIC_USEC)
    expect(usec).toBeLessThanOrEqual(reloading.at)
    expect(usec).toBeGreaterThan(reloading.at - 60_000_000)
    expect(stderr).toContain('"reload"')

    bridge.kill("SIGTERM")
    await until(() => exited !== undefined, "the bridge to exit", 30_000)
    expect(exited).toBe(0)
    await until(() => listener.datagrams.some((d) => d.fields.STOPPING === "1"), "STOPPING=1", 10_000)
    const order = kinds(listener.datagrams)
    expect(order.filter((k) => k !== "WATCHDOG" && k !== "STATUS")).toEqual(["READY", "RELOADING", "READY", "STOPPING"])
    expect(order[0]).toBe("READY")
    expect(order.at(-1)).toBe("STOPPING")
    expect(stderr).not.toContain("notify-failed")
  }, 180_000)
})
