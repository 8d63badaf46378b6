// The agent port unplugged and plugged again (device_del + device_add) while a stream flows to the guest: no stale
// byte reaches the next opener (issue 11 item 4; docs/qemu-facts.md). QEMU says nothing of an unplug on
// VSERPORT_CHANGE, only DEVICE_DELETED (spec §12), and keeps the chardev socket, whose unread bytes the port's next
// opener reads first. The emulated chardev holds host bytes for the next opener as QEMU does; the fake monitor
// reports the unplug as QEMU does.
import net from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { EmulatedChardev } from "../../harness/chardev.ts"
import { startFakeQmp } from "../../harness/fake-qmp.ts"
import { cleanupAfterEach, startBridge, startFakeRelay, tempDir, until } from "./fixtures.ts"
import { judge, Streamer, WIRE } from "./guest-stream.ts"

const cleanups = cleanupAfterEach()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const rig = async () => {
  const { dir, cleanup } = await tempDir()
  const chardev = await EmulatedChardev.listen({ guestPath: join(dir, "guest.sock"), hostPath: join(dir, "host.sock") })
  const qmp = await startFakeQmp({ path: join(dir, "qmp.sock"), device: "vdport", chardev: "vdagent", open: false })
  // While the port is plugged, the guest's opens and closes are VSERPORT_CHANGE events; an unplug is not.
  let plugged = true
  chardev.on("guest-open", () => qmp.setGuestOpen(true))
  chardev.on("guest-close", () => qmp.setGuestOpen(false, { event: plugged }))
  const relay = await startFakeRelay()
  const bridge = await startBridge(dir, {
    edge: relay.url,
    vms: [{ id: "vm1", chardev: chardev.hostPath, qmp: { socket: join(dir, "qmp.sock"), device: "vdport" } }],
  })
  cleanups.push(cleanup, () => chardev.close(), () => qmp.close(), () => relay.close(), () => bridge.stop())
  const conn = await relay.conn(0)
  conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
  await until(() => chardev.hostConnected, "the bridge connected to the chardev")
  return { chardev, qmp, conn, bridge, setPlugged: (p: boolean) => void (plugged = p) }
}

/** A guest opener reading until told to stop. */
const openGuest = async (path: string) => {
  const socket = net.connect(path)
  socket.on("error", () => {})
  const chunks: Array<Buffer> = []
  let bytes = 0
  socket.on("data", (b: Buffer) => {
    chunks.push(b)
    bytes += b.length
  })
  await new Promise<void>((ok) => socket.once("connect", () => ok()))
  return { read: () => Buffer.concat(chunks), bytes: () => bytes, close: () => socket.destroy() }
}

describe("agent port unplugged while a stream flows to the guest", () => {
  for (const fault of ["device_del"] as const) {
    it(`${fault}: the next opener reads, from byte 0, only whole messages sent after it opened`, { timeout: 60_000 }, async () => {
      const { chardev, qmp, conn, bridge, setPlugged } = await rig()
      let opens = 0
      const streamer = new Streamer(conn, 10, () => opens)
      cleanups.push(() => streamer.stop())
      opens = 1
      const first = await openGuest(chardev.guestPath)
      await until(() => first.bytes() >= 3 * WIRE, "the first opener reading the stream")
      // Past the 1.1 s after the open event in which the bridge polls query-chardev (QEMU may hold an event back): from
      // here only an event can tell it of a change.
      await sleep(1300)
      // The guest loses the port: its opener is gone, QEMU stops reading the socket, and only DEVICE_DELETED says so.
      setPlugged(false)
      first.close()
      await until(() => !chardev.guestConnected, "the unplugged port's opener gone")
      qmp.emit("DEVICE_DELETED", { device: "vdport", path: "/machine/peripheral/vdport" })
      // Time for the stream to keep going into a socket nobody reads (a bridge unaware of the close writes on).
      await sleep(500)
      setPlugged(true)
      opens = 2
      const second = await openGuest(chardev.guestPath)
      await until(() => second.bytes() >= 3 * WIRE, "the next opener reading the stream", 20_000)
      second.close()
      await streamer.stop()
      const verdict = judge(second.read(), 1, streamer.marks)
      expect(chardev.counters.heldBytesDelivered).toBe(0)
      expect(verdict.problem ?? verdict.stale ?? "clean").toBe("clean")
      expect(verdict.messages.length).toBeGreaterThanOrEqual(2)
      expect(bridge.metric("vdrelay_bridge_chardev_hangups_total")).toBeGreaterThanOrEqual(1)
      expect(bridge.logs.some((l) => l.event === "guest-port" && l["port"] === "closed" && l["cause"] === "DEVICE_DELETED")).toBe(true)
    })
  }
})
