// No stale byte reaches a new opener of the guest port (spec §12; issue 11). The emulated chardev behaves as QEMU does:
// host bytes the bridge hands over while the guest has its port closed wait for the NEXT opener and are read by it
// first, unless their host hangs up before that open. The fake monitor rate limits VSERPORT_CHANGE as QEMU does
// (1/s per device, latest kept), so a close 300 ms after an open event is only reported a second later. While a
// stream of 64 KiB messages flows to the guest, the guest closes and reopens its port; every opener must read, from
// its byte 0, whole chunks of messages the relay started sending after that opener opened.
import net from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { EmulatedChardev } from "../../harness/chardev.ts"
import { startFakeQmp } from "../../harness/fake-qmp.ts"
import { cleanupAfterEach, startBridge, startFakeRelay, tempDir, until } from "./fixtures.ts"
import { judge, Streamer, WIRE } from "./guest-stream.ts"

const cleanups = cleanupAfterEach()

const rig = async (rateLimitMs: number) => {
  const { dir, cleanup } = await tempDir()
  const chardev = await EmulatedChardev.listen({ guestPath: join(dir, "guest.sock"), hostPath: join(dir, "host.sock") })
  const qmp = await startFakeQmp({ path: join(dir, "qmp.sock"), device: "vdport", chardev: "vdagent", open: false, rateLimitMs })
  // The emulated chardev knows when the guest has the port open: QEMU's VSERPORT_CHANGE, through the fake monitor.
  chardev.on("guest-open", () => qmp.setGuestOpen(true))
  chardev.on("guest-close", () => qmp.setGuestOpen(false))
  const relay = await startFakeRelay()
  const bridge = await startBridge(dir, {
    edge: relay.url,
    vms: [{ id: "vm1", chardev: chardev.hostPath, qmp: { socket: join(dir, "qmp.sock"), device: "vdport" } }],
  })
  cleanups.push(cleanup, () => chardev.close(), () => qmp.close(), () => relay.close(), () => bridge.stop())
  const conn = await relay.conn(0)
  conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
  await until(() => chardev.hostConnected, "the bridge connected to the chardev")
  return { chardev, conn, bridge }
}

/** A guest opener: connects to the port and reads everything until closed. */
const openGuest = async (path: string) => {
  const socket = net.connect(path)
  socket.on("error", () => {})
  const chunks: Array<Buffer> = []
  let bytes = 0
  let ended = false
  socket.on("data", (b: Buffer) => {
    chunks.push(b)
    bytes += b.length
  })
  // The chardev ends an opener when its host leaves after writing to it (spice-vdagentd then reopens).
  socket.on("end", () => (ended = true))
  await new Promise<void>((ok) => socket.once("connect", () => ok()))
  return { read: () => Buffer.concat(chunks), bytes: () => bytes, ended: () => ended, close: () => socket.destroy() }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Opens the port `cycles + 1` times while the stream flows; each opener reads at least three messages' worth and for
 * at least 300 ms (so its close falls in the rate-limit window its own open event started), then closes. The next
 * open follows `gapMs` after `ready()` (by default at once).
 */
const reopenDuringStream = async (opts: { cycles: number; gapMs: number; rateLimitMs?: number; ready?: (chardev: EmulatedChardev, closes: number) => Promise<void> }) => {
  const { chardev, conn, bridge } = await rig(opts.rateLimitMs ?? 1000)
  let opensBegun = 0
  // 6 MB/s, leaving the event loop the bridge shares with this test time for its QMP polls.
  const streamer = new Streamer(conn, 10, () => opensBegun)
  cleanups.push(() => streamer.stop())
  const reads: Array<Buffer> = []
  for (let open = 1; open <= opts.cycles + 1; open++) {
    opensBegun = open
    const guest = await openGuest(chardev.guestPath)
    const since = Date.now()
    // Cheap checks only: this loop shares the event loop with the bridge, whose QMP polls must not be starved.
    await until(() => guest.ended() || (guest.bytes() >= 3 * WIRE && Date.now() - since >= 300), `opener ${open} reading messages`)
    guest.close()
    reads.push(guest.read()) // judged at the end: judging here would stall the loop the bridge's polls run on
    if (open > opts.cycles) break
    await opts.ready?.(chardev, open)
    await sleep(opts.gapMs)
  }
  await streamer.stop()
  const verdicts = reads.map((stream, i) => judge(stream, i + 1, streamer.marks))
  return { verdicts, chardev, bridge }
}

/** Until the chardev saw its host leave `n` times (the bridge hung up), or 2 s passed (a bridge that does not). */
const hostLeft = async (chardev: EmulatedChardev, n: number): Promise<void> => {
  const deadline = Date.now() + 2000
  const left = () => chardev.counters.hostConnections - (chardev.hostConnected ? 1 : 0)
  await until(() => left() >= n || Date.now() > deadline, "the bridge's hang-up (or the deadline)")
}

describe("guest port reopened while a stream flows to the guest (QEMU holds host bytes for the next opener)", () => {
  // Measured from the moment the bridge's hang-up reached the chardev (or 2 s after the close if it never does): how
  // soon a bridge learns of a close is the next test's concern; this one is about what it does then.
  for (const [gapMs, cycles] of [
    [0, 3],
    [20, 3],
    [300, 3],
    [2000, 2],
  ] as const) {
    it(`a closed port strands nothing: every opener reads, from byte 0, whole messages sent after its open (gap ${gapMs} ms)`, { timeout: 60_000 }, async () => {
      const { verdicts, chardev, bridge } = await reopenDuringStream({ cycles, gapMs, ready: hostLeft })
      expect(verdicts.map((v) => v.problem ?? v.stale ?? "clean")).toEqual(verdicts.map(() => "clean"))
      expect(chardev.counters.heldBytesDelivered).toBe(0)
      expect(verdicts.every((v) => v.messages.length >= 2)).toBe(true)
      // The stream was cut while the guest had the port closed: the bridge hung up so the chardev dropped what it held.
      // (The last opener's close may be acted on before the test ends: one more.)
      expect(bridge.metric("vdrelay_bridge_chardev_hangups_total")).toBeGreaterThanOrEqual(cycles)
    })
  }

  it("a close QEMU's rate limit holds back (300 ms after the open event) is found by polling before a reopen 300 ms later", { timeout: 60_000 }, async () => {
    // The open's event is emitted at once; the close ≥ 300 ms later is parked until 1 s after it, so only
    // query-chardev can reveal the close before the reopen. Nothing waits for the bridge here.
    const { verdicts, chardev, bridge } = await reopenDuringStream({ cycles: 1, gapMs: 300 })
    expect(verdicts.map((v) => v.problem ?? v.stale ?? "clean")).toEqual(["clean", "clean"])
    expect(chardev.counters.heldBytesDelivered).toBe(0)
    // The close was found by a query while QEMU still held its event back.
    expect(bridge.logs.find((l) => l.event === "chardev-hangup")?.["cause"]).toBe("poll while QEMU may hold an event back")
  })
})
