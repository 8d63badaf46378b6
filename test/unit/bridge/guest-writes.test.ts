// Relay → guest through the real bridge: only whole messages reach the chardev (tunnel drop mid message, abort, caps,
// bad chunking, chardev loss), the two ports interleave at chunk boundaries, and `wrote` acknowledges what was written.
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { bytes, cleanupAfterEach, type FakeChardev, type FakeRelay, type InProcessBridge, type RelayConn, startBridge, startFakeChardev, startFakeRelay, tempDir, until } from "./fixtures.ts"
import { message, mouseState, portStream, sendWrites, walkChunks } from "./guest.ts"

const cleanups = cleanupAfterEach()

interface Rig {
  chardev: FakeChardev
  relay: FakeRelay
  bridge: InProcessBridge
}

const setup = async (config: Record<string, unknown> = {}, chardevOpts = {}): Promise<Rig> => {
  const { dir, cleanup } = await tempDir()
  const chardev = await startFakeChardev(join(dir, "vdagent.sock"), chardevOpts)
  const relay = await startFakeRelay()
  const bridge = await startBridge(dir, { edge: relay.url, vms: [{ id: "vm1", chardev: chardev.path }], ...config })
  cleanups.push(cleanup, () => chardev.close(), () => relay.close(), () => bridge.stop())
  return { chardev, relay, bridge }
}

/** Welcomes link `n` and returns it with the bridge's current epoch (the chardev is connected). */
const welcomed = async (rig: Rig, n: number): Promise<{ conn: RelayConn; epoch: number }> => {
  const conn = await rig.relay.conn(n)
  conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
  await until(() => conn.hello!.chardev || conn.of("chardev").some((f) => f.up), "chardev up")
  const ups = conn.of("chardev").filter((f) => f.up)
  return { conn, epoch: ups.length > 0 ? ups.at(-1)!.epoch : conn.hello!.epoch }
}

const lastWrote = (conn: RelayConn): number => conn.of("wrote").at(-1)?.pos ?? 0

/** The fake QEMU has read every byte the bridge counts as written (a write completes once the kernel has it). */
const readAll = (rig: Rig): Promise<void> =>
  until(() => rig.chardev.received.flat().reduce((n, b) => n + b.length, 0) >= rig.bridge.metric("vdrelay_bridge_guest_bytes_written_total"), "the chardev read what was written")

/** Sends `wire` as write frames of 5000 bytes, the first naming the message; returns the position after it. */
const sendKeyed = (conn: RelayConn, epoch: number, pos: number, wire: Uint8Array, key: { origin: string; id: number }): number => {
  for (let at = 0; at < wire.length; at += 5000) {
    const data = wire.subarray(at, Math.min(wire.length, at + 5000))
    conn.send({ t: "write", epoch, pos: pos + at, port: 1, data, end: at + 5000 >= wire.length, ...(at === 0 ? key : {}) })
  }
  return pos + wire.length
}

describe("guest-bound writes", () => {
  it("writes a message only once its last piece arrived, pieces split anywhere, and acknowledges it", async () => {
    const rig = await setup()
    const { conn, epoch } = await welcomed(rig, 0)
    const clip = message(1, 4, bytes(10_000, 7))
    let pos = sendWrites(conn, epoch, 0, 1, clip.subarray(0, 6000), 1000, false)
    await until(() => rig.bridge.metric("vdrelay_bridge_guest_buffered_bytes") === 6000, "partial buffered")
    expect(rig.chardev.receivedBytes().length).toBe(0)
    pos = sendWrites(conn, epoch, pos, 1, clip.subarray(6000), 777)
    await until(() => lastWrote(conn) === pos, "wrote ack for the whole message")
    await readAll(rig)
    expect(rig.chardev.receivedBytes().equals(clip)).toBe(true)
    expect(rig.bridge.metric("vdrelay_bridge_guest_messages_written_total")).toBe(1)
  })

  it("acknowledges a MOUSE_STATE past a port-1 message still streaming in (only a message's end holds wrote back)", async () => {
    const rig = await setup()
    const { conn, epoch } = await welcomed(rig, 0)
    const clip = message(1, 4, bytes(40_000, 19))
    let pos = sendWrites(conn, epoch, 0, 1, clip.subarray(0, 20_560), 2056, false)
    const mouse = mouseState(5, 6)
    pos = sendWrites(conn, epoch, pos, 2, mouse)
    await until(() => lastWrote(conn) === pos, "wrote passes the mouse while the clipboard streams")
    await readAll(rig)
    expect(rig.chardev.receivedBytes().equals(mouse)).toBe(true)
    const end = sendWrites(conn, epoch, pos, 1, clip.subarray(20_560), 2056)
    await until(() => lastWrote(conn) === end, "the clipboard written and acknowledged")
    await readAll(rig)
    expect(portStream(rig.chardev.receivedBytes(), 1).equals(clip)).toBe(true)
  })

  it("drops a partial message when the tunnel drops mid message, keeps complete ones, and resumes at hello.wrote", async () => {
    const rig = await setup({}, { pausedReads: true })
    const { conn, epoch } = await welcomed(rig, 0)
    const big = message(1, 4, bytes(3 << 20, 8)) // more than the socket buffers hold: still being written after the drop
    const partial = message(1, 4, bytes(50_000, 9))
    let pos = sendWrites(conn, epoch, 0, 1, big, 60_000)
    pos = sendWrites(conn, epoch, pos, 1, partial.subarray(0, 20_000), 4096, false)
    await until(() => rig.bridge.metric("vdrelay_bridge_guest_buffered_bytes") + rig.bridge.metric("vdrelay_bridge_guest_bytes_written_total") === big.length + 20_000, "both received")
    conn.ws.terminate()
    const c1 = await rig.relay.conn(1)
    expect(c1.hello).toMatchObject({ epoch, chardev: true, wrote: pos })
    c1.send({ t: "welcome", v: 1, epoch, ack: 0, window: 1 << 20 })
    const next = message(1, 7, bytes(300, 10))
    const end = sendWrites(c1, epoch, pos, 1, next)
    rig.chardev.current!.resume()
    await until(() => lastWrote(c1) === end, "everything settled")
    await readAll(rig)
    expect(rig.chardev.receivedBytes().equals(Buffer.concat([big, next]))).toBe(true)
    expect(rig.bridge.metric("vdrelay_bridge_guest_messages_discarded_total", { vm: "vm1", reason: "tunnel-lost" })).toBe(1)
  })

  it("does not write again a keyed message resent on a new tunnel (relay restart), and acknowledges it", async () => {
    const rig = await setup()
    const { conn, epoch } = await welcomed(rig, 0)
    const data = message(1, 11, bytes(70_000, 21))
    const end = sendKeyed(conn, epoch, 0, data, { origin: "sdk-a", id: 3 })
    await until(() => lastWrote(conn) === end, "written")
    conn.ws.terminate()
    const c1 = await rig.relay.conn(1)
    expect(c1.hello).toMatchObject({ epoch, wrote: end })
    c1.send({ t: "welcome", v: 1, epoch, ack: 0, window: 1 << 20 })
    // The restarted relay could not know the message was written: it sends it again, then a new one.
    let pos = sendKeyed(c1, epoch, end, data, { origin: "sdk-a", id: 3 })
    const next = message(1, 11, bytes(100, 22))
    pos = sendKeyed(c1, epoch, pos, next, { origin: "sdk-a", id: 4 })
    await until(() => lastWrote(c1) === pos, "both settled")
    await readAll(rig)
    expect(rig.chardev.receivedBytes().equals(Buffer.concat([data, next]))).toBe(true)
    expect(rig.bridge.metric("vdrelay_bridge_guest_duplicates_suppressed_total")).toBe(1)
  })

  it("discards a port's partial message on abort and goes on with the next one", async () => {
    const rig = await setup()
    const { conn, epoch } = await welcomed(rig, 0)
    const aborted = message(1, 4, bytes(9000, 11))
    let pos = sendWrites(conn, epoch, 0, 1, aborted.subarray(0, 4000), 1000, false)
    conn.send({ t: "abort", epoch, pos, port: 1 })
    const next = message(1, 6, bytes(8, 12))
    pos = sendWrites(conn, epoch, pos, 1, next)
    await until(() => lastWrote(conn) === pos, "wrote past the aborted message")
    await readAll(rig)
    expect(rig.chardev.receivedBytes().equals(next)).toBe(true)
    expect(rig.bridge.metric("vdrelay_bridge_guest_messages_discarded_total", { vm: "vm1", reason: "aborted" })).toBe(1)
  })

  it("lets a MOUSE_STATE on port 2 overtake a 10 MiB port-1 message at a chunk boundary, both arriving whole", async () => {
    const rig = await setup({}, { pausedReads: true })
    const { conn, epoch } = await welcomed(rig, 0)
    const big = message(1, 4, bytes(10 << 20, 13))
    const mouse = mouseState(100, 200)
    let pos = sendWrites(conn, epoch, 0, 1, big, 64_000)
    pos = sendWrites(conn, epoch, pos, 2, mouse)
    const total = big.length + mouse.length
    await until(
      () => rig.bridge.metric("vdrelay_bridge_guest_buffered_bytes") + rig.bridge.metric("vdrelay_bridge_guest_bytes_written_total") === total,
      "the mouse message received while the big one is being written",
    )
    rig.chardev.current!.resume()
    await until(() => lastWrote(conn) === pos, "both written")
    await readAll(rig)
    const stream = rig.chardev.receivedBytes()
    const chunks = walkChunks(stream)
    const mouseAt = chunks.findIndex((c) => c.port === 2)
    expect(mouseAt).toBeGreaterThan(0)
    expect(chunks[mouseAt]!.offset).toBeLessThan(big.length / 2) // it did not wait for the 10 MiB
    expect(portStream(stream, 1).equals(big)).toBe(true)
    expect(portStream(stream, 2).equals(mouse)).toBe(true)
  })

  it("discards (and acknowledges past) messages over the cap or badly chunked, without writing a byte of them", async () => {
    const rig = await setup({ limits: { maxGuestMessageBytes: 65_536, guestBufferBytes: 131_072 } })
    const { conn, epoch } = await welcomed(rig, 0)
    let pos = sendWrites(conn, epoch, 0, 1, message(1, 4, bytes(100_000, 14)), 8192)
    const bad = Buffer.from(message(1, 4, bytes(100, 15)))
    bad.writeUInt32LE(2, 0) // a port-2 chunk inside a port-1 message
    pos = sendWrites(conn, epoch, pos, 1, bad)
    const good = message(2, 1, bytes(13, 16))
    pos = sendWrites(conn, epoch, pos, 2, good)
    await until(() => lastWrote(conn) === pos, "wrote past everything")
    await readAll(rig)
    expect(rig.chardev.receivedBytes().equals(good)).toBe(true)
    expect(rig.bridge.metric("vdrelay_bridge_guest_messages_discarded_total", { vm: "vm1", reason: "too-large" })).toBe(1)
    expect(rig.bridge.metric("vdrelay_bridge_guest_messages_discarded_total", { vm: "vm1", reason: "invalid-chunking" })).toBe(1)
  })

  it("starts a new epoch when the chardev reconnects: the old partial is dropped and old-epoch frames are ignored", async () => {
    const rig = await setup()
    const { conn, epoch } = await welcomed(rig, 0)
    const msg = message(1, 4, bytes(6000, 17))
    sendWrites(conn, epoch, 0, 1, msg.subarray(0, 3000), 1000, false)
    await until(() => rig.bridge.metric("vdrelay_bridge_guest_buffered_bytes") === 3000, "partial buffered")
    rig.chardev.current!.destroy() // QEMU side closes (VM restart)
    await until(() => conn.of("chardev").some((f) => f.up && f.epoch > epoch), "new epoch announced")
    const epoch2 = conn.of("chardev").find((f) => f.up)!.epoch
    expect(conn.of("chardev")[0]).toMatchObject({ epoch, up: false })
    sendWrites(conn, epoch, 3000, 1, msg.subarray(3000)) // the rest, in the old epoch: ignored
    const fresh = message(1, 6, bytes(8, 18))
    const end = sendWrites(conn, epoch2, 0, 1, fresh)
    await until(() => lastWrote(conn) === end && conn.of("wrote").at(-1)!.epoch === epoch2, "fresh message written")
    await readAll(rig)
    expect(rig.chardev.receivedBytes(1).equals(fresh)).toBe(true)
    expect(rig.chardev.receivedBytes(0).length).toBe(0)
  })
})
