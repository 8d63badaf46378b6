// Agent → relay through the real bridge: resume replays exactly the unacknowledged tail, rewind, the retention bound
// and the relay's window stop chardev reads (the guest blocks), and a resume the bridge cannot honour restarts the epoch.
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { bytes, cleanupAfterEach, type FakeChardev, type FakeRelay, type InProcessBridge, type RelayConn, startBridge, startFakeChardev, startFakeRelay, tempDir, until } from "./fixtures.ts"

const cleanups = cleanupAfterEach()

const setup = async (config: Record<string, unknown> = {}): Promise<{ chardev: FakeChardev; relay: FakeRelay; bridge: InProcessBridge }> => {
  const { dir, cleanup } = await tempDir()
  const chardev = await startFakeChardev(join(dir, "vdagent.sock"))
  const relay = await startFakeRelay()
  const bridge = await startBridge(dir, { edge: relay.url, vms: [{ id: "vm1", chardev: chardev.path }], ...config })
  cleanups.push(cleanup, () => chardev.close(), () => relay.close(), () => bridge.stop())
  return { chardev, relay, bridge }
}

/** The epoch the bridge is in on this link: from hello if the chardev was up, else from the latest chardev frame. */
const epochOn = async (conn: RelayConn): Promise<number> => {
  await until(() => conn.hello!.chardev || conn.of("chardev").some((f) => f.up), "chardev up on the link")
  const ups = conn.of("chardev").filter((f) => f.up)
  return ups.length > 0 ? ups[ups.length - 1]!.epoch : conn.hello!.epoch
}

const writeAgent = (chardev: FakeChardev, data: Buffer, piece = 7000): void => {
  for (let at = 0; at < data.length; at += piece) chardev.current!.write(data.subarray(at, at + piece))
}

describe("agent stream", () => {
  it("resumes after a tunnel drop by replaying exactly the unacknowledged tail, without duplicates", async () => {
    const { chardev, relay, bridge } = await setup()
    const c0 = await relay.conn(0)
    c0.send({ t: "welcome", v: 1, epoch: c0.hello!.epoch, ack: 0, window: 1 << 20 })
    const epoch = await epochOn(c0)
    const a = bytes(300_000, 1)
    const b = bytes(50_000, 2)
    writeAgent(chardev, a)
    await until(() => c0.agentEnd === a.length, "all of A on link 0")
    expect(c0.agentBytes(0).equals(a)).toBe(true)
    c0.send({ t: "ack", epoch, pos: 100_000 })
    await until(() => bridge.metric("vdrelay_bridge_retained_bytes") === 200_000, "ack applied")
    c0.ws.terminate()
    writeAgent(chardev, b) // read into the retained tail while the tunnel is down
    const c1 = await relay.conn(1)
    expect(c1.hello).toMatchObject({ epoch, chardev: true, from: 100_000, bridge: "test-host" })
    expect(c1.authorization).toBe("Bearer token-for-vm1")
    expect(c1.of("data")).toHaveLength(0) // nothing before welcome
    c1.send({ t: "welcome", v: 1, epoch, ack: 100_000, window: 1 << 20 })
    const all = Buffer.concat([a, b])
    await until(() => c1.agentEnd === all.length, "the tail and B on link 1")
    expect(c1.of("data")[0]!.pos).toBe(100_000)
    expect(c1.agentBytes(100_000).equals(all.subarray(100_000))).toBe(true)
    // 200,000 unacknowledged bytes of A; plus whatever of B went out on link 0 before the bridge saw it die.
    expect(bridge.metric("vdrelay_bridge_agent_bytes_replayed_total")).toBeGreaterThanOrEqual(200_000)
    expect(bridge.metric("vdrelay_bridge_agent_bytes_replayed_total")).toBeLessThanOrEqual(250_000)
    expect(bridge.metric("vdrelay_bridge_tunnel_resumes_total")).toBe(1)
    expect(bridge.logs.some((l) => l.event === "tunnel-resumed" && l.vm === "vm1")).toBe(true)
  })

  it("honours rewind from any retained position, and restarts the epoch when asked for bytes it no longer has", async () => {
    const { chardev, relay } = await setup()
    const c0 = await relay.conn(0)
    c0.send({ t: "welcome", v: 1, epoch: c0.hello!.epoch, ack: 0, window: 1 << 20 })
    const epoch = await epochOn(c0)
    const a = bytes(120_000, 3)
    writeAgent(chardev, a)
    await until(() => c0.agentEnd === a.length, "A sent")
    c0.send({ t: "ack", epoch, pos: 40_000 })
    const before = c0.of("data").length
    c0.send({ t: "rewind", epoch, pos: 50_000 })
    await until(() => c0.agentEnd === a.length && c0.of("data").length > before && c0.of("data").at(-1)!.pos + c0.of("data").at(-1)!.bytes.length === a.length && c0.of("data")[before]!.pos === 50_000, "replay after rewind")
    const replay = Buffer.concat(c0.of("data").slice(before).map((d) => d.bytes))
    expect(replay.equals(a.subarray(50_000))).toBe(true)
    // Bytes below the last ack are gone: the bridge drops the chardev connection so the agent resets, and a new epoch begins.
    c0.send({ t: "rewind", epoch, pos: 10_000 })
    await until(() => c0.of("chardev").some((f) => f.up && f.epoch > epoch), "a new epoch")
    expect(c0.of("chardev").find((f) => !f.up)).toMatchObject({ epoch })
    expect(chardev.sockets.length).toBe(2)
    expect(chardev.sockets[0]!.destroyed || chardev.sockets[0]!.readableEnded).toBe(true)
    // The relay answers the new epoch with a welcome on the same link: an ack and window, not a protocol error.
    const epoch2 = c0.of("chardev").find((f) => f.up)!.epoch
    const b = bytes(30_000, 6)
    writeAgent(chardev, b)
    c0.send({ t: "welcome", v: 1, epoch: epoch2, ack: 0, window: 1 << 20 })
    await until(() => c0.of("data").filter((d) => d.epoch === epoch2).reduce((n, d) => n + d.bytes.length, 0) === b.length, "the new epoch's bytes")
    const fresh = c0.of("data").filter((d) => d.epoch === epoch2)
    expect(fresh[0]!.pos).toBe(0)
    expect(Buffer.concat(fresh.map((d) => d.bytes)).equals(b)).toBe(true)
    expect(c0.closeCode).toBeUndefined()
    expect(relay.conns).toHaveLength(1)
  })

  it("stops reading the chardev at the retention bound while nothing is acknowledged, and loses nothing", async () => {
    const { chardev, relay, bridge } = await setup({ limits: { retainBytes: 65_536 } })
    const c0 = await relay.conn(0)
    c0.send({ t: "welcome", v: 1, epoch: c0.hello!.epoch, ack: 0, window: 64 << 20 })
    const epoch = await epochOn(c0)
    const a = bytes(1 << 20, 4)
    writeAgent(chardev, a, 32_768)
    await until(() => bridge.metric("vdrelay_bridge_read_paused") === 1 && c0.agentEnd === 65_536, "reads paused at the bound")
    expect(bridge.metric("vdrelay_bridge_retained_bytes")).toBe(65_536)
    expect(bridge.metric("vdrelay_bridge_agent_bytes_read_total")).toBe(65_536)
    expect(chardev.current!.writableLength).toBeGreaterThan(0) // the rest waits on the guest side
    // The relay consumes at its own pace: every ack lets exactly that much more in.
    while (c0.agentEnd < a.length) {
      const end = c0.agentEnd
      c0.send({ t: "ack", epoch, pos: end })
      await until(() => c0.agentEnd > end, "more after ack")
      expect(c0.agentEnd - end).toBeLessThanOrEqual(65_536)
    }
    expect(c0.agentBytes(0).equals(a)).toBe(true)
  })

  it("keeps unacknowledged bytes within the relay's window", async () => {
    const { chardev, relay, bridge } = await setup()
    const c0 = await relay.conn(0)
    c0.send({ t: "welcome", v: 1, epoch: c0.hello!.epoch, ack: 0, window: 16_384 })
    const epoch = await epochOn(c0)
    const a = bytes(200_000, 5)
    writeAgent(chardev, a)
    await until(() => bridge.metric("vdrelay_bridge_read_paused") === 1 && c0.agentEnd === 16_384, "window full")
    c0.send({ t: "ack", epoch, pos: 10_000 })
    await until(() => c0.agentEnd === 26_384, "window moved by the ack")
    let acked = 10_000
    while (acked < a.length) {
      await until(() => c0.agentEnd === Math.min(a.length, acked + 16_384), "window refilled")
      acked = c0.agentEnd
      c0.send({ t: "ack", epoch, pos: acked })
    }
    expect(c0.agentBytes(0).equals(a)).toBe(true)
  })

  it("serves several VMs from one process, one tunnel each, with their own URL, token and stream", async () => {
    const { dir, cleanup } = await tempDir()
    const relay = await startFakeRelay()
    const chardevs = [await startFakeChardev(join(dir, "a.sock")), await startFakeChardev(join(dir, "b.sock"))]
    const bridge = await startBridge(dir, { edge: relay.url, vms: [{ id: "vm-a", chardev: chardevs[0]!.path }, { id: "vm-b", chardev: chardevs[1]!.path }] })
    cleanups.push(cleanup, () => chardevs[0]!.close(), () => chardevs[1]!.close(), () => relay.close(), () => bridge.stop())
    await relay.conn(1)
    const byVm = (vm: string): RelayConn => relay.conns.find((c) => c.path === `/v1/vms/${vm}/agent`)!
    for (const [i, vm] of ["vm-a", "vm-b"].entries()) {
      const c = byVm(vm)
      expect(c.authorization).toBe(`Bearer token-for-${vm}`)
      c.send({ t: "welcome", v: 1, epoch: c.hello!.epoch, ack: 0, window: 1 << 20 })
      await epochOn(c)
      await until(() => chardevs[i]!.current !== undefined, "chardev connected")
      chardevs[i]!.current!.write(bytes(1000 + i, 30 + i))
    }
    await until(() => byVm("vm-a").agentEnd === 1000 && byVm("vm-b").agentEnd === 1001, "both streams")
    expect(byVm("vm-a").agentBytes(0).equals(bytes(1000, 30))).toBe(true)
    expect(byVm("vm-b").agentBytes(0).equals(bytes(1001, 31))).toBe(true)
    expect(bridge.metric("vdrelay_bridge_agent_bytes_read_total", { vm: "vm-b" })).toBe(1001)
  })
})
