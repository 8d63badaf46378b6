// `wrote.server`: a MOUSE_STATE the bridge writes while a big port-1 message ahead of it is still being written is
// confirmed at once (the relay's one-in-flight mouse token), and `pos` still waits for the big message.
import { join } from "node:path"
import { expect, it } from "vitest"
import { bytes, cleanupAfterEach, startBridge, startFakeChardev, startFakeRelay, tempDir, until } from "./fixtures.ts"
import { message, mouseState, portStream, sendWrites } from "./guest.ts"

const cleanups = cleanupAfterEach()

it("confirms a MOUSE_STATE on the server port before the 10 MiB port-1 message written around it", async () => {
  const { dir, cleanup } = await tempDir()
  const chardev = await startFakeChardev(join(dir, "vdagent.sock"), { pausedReads: true })
  const relay = await startFakeRelay()
  const bridge = await startBridge(dir, { edge: relay.url, vms: [{ id: "vm1", chardev: chardev.path }] })
  cleanups.push(cleanup, () => chardev.close(), () => relay.close(), () => bridge.stop())
  const conn = await relay.conn(0)
  conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
  await until(() => conn.hello!.chardev || conn.of("chardev").some((f) => f.up), "chardev up")
  const ups = conn.of("chardev").filter((f) => f.up)
  const epoch = ups.length > 0 ? ups.at(-1)!.epoch : conn.hello!.epoch
  const big = message(1, 4, bytes(10 << 20, 21))
  const mouse = mouseState(7, 8)
  let pos = sendWrites(conn, epoch, 0, 1, big, 64_000)
  pos = sendWrites(conn, epoch, pos, 2, mouse)
  await until(
    () => bridge.metric("vdrelay_bridge_guest_buffered_bytes") + bridge.metric("vdrelay_bridge_guest_bytes_written_total") === big.length + mouse.length,
    "both messages received",
  )
  chardev.current!.resume()
  await until(() => conn.of("wrote").some((f) => f.pos === pos), "both written")
  const early = conn.of("wrote").find((f) => f.server === pos)
  expect(early).toBeDefined()
  expect(early!.pos).toBeLessThan(big.length) // confirmed while the big message was still being written
  expect(conn.of("wrote").every((f) => f.server === undefined || f.server > f.pos)).toBe(true)
  await until(() => chardev.receivedBytes().length >= big.length + mouse.length, "the chardev read it all") // writes complete before reads
  const stream = chardev.receivedBytes()
  expect(portStream(stream, 1).equals(big)).toBe(true)
  expect(portStream(stream, 2).equals(mouse)).toBe(true)
})
