// `wrote.server`: MOUSE_STATEs the bridge writes while a big port-1 message ahead of them is still being written are
// confirmed before it (the relay's mouse tokens), and `pos` still waits for the big message. Pointer-only progress is
// confirmed once per 32 moves or per pause, not once per move (each `wrote` is a Durable Object request).
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
  const mice = Array.from({ length: 32 }, (_, i) => mouseState(7 + i, 8))
  const mouse = Buffer.concat(mice)
  let pos = sendWrites(conn, epoch, 0, 1, big, 64_000)
  for (const m of mice) pos = sendWrites(conn, epoch, pos, 2, m)
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

it("confirms pointer-only progress once per 32 moves or per pause, and a client message at once with the moves before it", async () => {
  const { dir, cleanup } = await tempDir()
  const chardev = await startFakeChardev(join(dir, "vdagent.sock"))
  const relay = await startFakeRelay()
  const bridge = await startBridge(dir, { edge: relay.url, vms: [{ id: "vm1", chardev: chardev.path }] })
  cleanups.push(cleanup, () => chardev.close(), () => relay.close(), () => bridge.stop())
  const conn = await relay.conn(0)
  conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
  await until(() => conn.hello!.chardev || conn.of("chardev").some((f) => f.up), "chardev up")
  const ups = conn.of("chardev").filter((f) => f.up)
  const epoch = ups.length > 0 ? ups.at(-1)!.epoch : conn.hello!.epoch
  // 100 moves, one write frame each, as the relay sends them.
  let pos = 0
  for (let i = 0; i < 100; i++) pos = sendWrites(conn, epoch, pos, 2, mouseState(i, i))
  await until(() => conn.of("wrote").some((f) => f.pos === pos), "every move confirmed (the last ones after the pause)")
  const wrotes = conn.of("wrote").length
  expect(wrotes).toBeGreaterThanOrEqual(1)
  // One per 32 moves and one after the pause make 4; a machine stalling the bridge for more than the pause between two
  // moves adds one each time, but nothing near one per move.
  expect(wrotes).toBeLessThan(50)
  // Three moves then a small client message: one `wrote`, covering all four, with no pause needed.
  for (let i = 0; i < 3; i++) pos = sendWrites(conn, epoch, pos, 2, mouseState(1000 + i, 1))
  pos = sendWrites(conn, epoch, pos, 1, message(1, 4, bytes(100, 3)))
  await until(() => conn.of("wrote").some((f) => f.pos === pos), "the client message confirmed")
  expect(conn.of("wrote").length).toBeLessThanOrEqual(wrotes + 2)
  await until(() => chardev.receivedBytes().length >= 103 * 41 + 20 + 8 + 100, "the chardev read it all")
  expect(portStream(chardev.receivedBytes(), 2).length).toBe(103 * mouseState(0, 0).length)
})
