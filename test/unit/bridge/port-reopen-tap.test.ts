// The real-VM test bed's tap (test/vm/chardev-tap.ts) must not keep bytes alive that QEMU would drop: when the bridge
// hangs up, QEMU's G_IO_HUP watch closes the connection and its unread bytes go, whether QEMU was reading or not
// (docs/qemu-facts.md §2). A tap that stopped reading the bridge under backpressure did not see the hang-up and kept its
// own connection to QEMU open, so QEMU later handed the old bytes to the guest's next opener (§3: reliability §2b
// finding 3). Here QEMU with the guest port closed is a UNIX server that accepts and never reads.
import net from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ChardevTap } from "../../vm/chardev-tap.ts"
import { cleanupAfterEach, tempDir, until } from "./fixtures.ts"

const cleanups = cleanupAfterEach()

describe("the real-VM tap in front of a chardev that does not read (guest port closed)", () => {
  it("a bridge hang-up closes the tap's connection to QEMU at once, so nothing the bridge wrote outlives it", { timeout: 30_000 }, async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const upstream: Array<{ socket: net.Socket; closed: boolean }> = []
    // pauseOnConnect: QEMU does not read the socket while the guest has the port closed.
    const qemu = net.createServer({ pauseOnConnect: true }, (socket) => {
      const c = { socket, closed: false }
      socket.on("error", () => {})
      socket.on("close", () => void (c.closed = true))
      upstream.push(c)
    })
    await new Promise<void>((ok) => qemu.listen(join(dir, "qemu.sock"), () => ok()))
    cleanups.push(() => new Promise<void>((ok) => qemu.close(() => ok())))
    const tap = await ChardevTap.start(join(dir, "tap.sock"), join(dir, "qemu.sock"))
    cleanups.push(() => tap.close())

    const bridge = net.connect(tap.path)
    bridge.on("error", () => {})
    await new Promise<void>((ok) => bridge.once("connect", () => ok()))
    // Far more than the socket buffers hold: the tap cannot hand it all to a QEMU that does not read.
    bridge.write(Buffer.alloc(4 << 20, 0x41))
    await until(() => upstream.length === 1, "the tap's connection to QEMU")
    await new Promise((r) => setTimeout(r, 300))
    bridge.destroy()
    // QEMU learns of a hang-up without reading (its HUP watch): the tap must too, while "QEMU" still reads nothing.
    await until(() => tap.connections[0]!.closed, "the tap noticing the bridge's hang-up while QEMU does not read", 10_000)
    // And it closed its connection to QEMU: reading it now gives at most what the kernel had taken, then EOF.
    upstream[0]!.socket.on("data", () => {})
    upstream[0]!.socket.resume()
    await until(() => upstream[0]!.closed, "the tap's connection to QEMU closed", 10_000)
    expect(upstream.length).toBe(1)
  })
})
