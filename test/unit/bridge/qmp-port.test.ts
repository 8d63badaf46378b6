// Guest port gating through QMP (fake QEMU monitor): query-chardev's frontend-open is the truth, VSERPORT_CHANGE only
// triggers a query; no writes while the port is known closed; `port` frames tell the relay the level; a close after
// bytes were handed to the chardev hangs it up (QEMU drops what it held rather than give it to the next opener).
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { startFakeQmp, type FakeQmp } from "../../harness/fake-qmp.ts"
import { bytes, cleanupAfterEach, type FakeChardev, type FakeRelay, type InProcessBridge, type RelayConn, startBridge, startFakeChardev, startFakeRelay, tempDir, until } from "./fixtures.ts"
import { message, sendWrites } from "./guest.ts"

const cleanups = cleanupAfterEach()

interface Rig {
  chardev: FakeChardev
  relay: FakeRelay
  bridge: InProcessBridge
  qmp: FakeQmp
}

const setup = async (open: boolean, qmpConfig: Record<string, unknown> = {}, rateLimitMs = 200, chardevOpts = {}): Promise<Rig> => {
  const { dir, cleanup } = await tempDir()
  const chardev = await startFakeChardev(join(dir, "vdagent.sock"), chardevOpts)
  const qmp = await startFakeQmp({ path: join(dir, "qmp.sock"), device: "vdport", chardev: "charvdagent", open, rateLimitMs })
  const relay = await startFakeRelay()
  const bridge = await startBridge(dir, {
    edge: relay.url,
    vms: [{ id: "vm1", chardev: chardev.path, qmp: { socket: join(dir, "qmp.sock"), device: "vdport", ...qmpConfig } }],
  })
  cleanups.push(cleanup, () => chardev.close(), () => qmp.close(), () => relay.close(), () => bridge.stop())
  return { chardev, relay, bridge, qmp }
}

const welcomed = async (rig: Rig): Promise<{ conn: RelayConn; epoch: number }> => {
  const conn = await rig.relay.conn(0)
  conn.send({ t: "welcome", v: 1, epoch: conn.hello!.epoch, ack: 0, window: 1 << 20 })
  await until(() => conn.hello!.chardev || conn.of("chardev").some((f) => f.up), "chardev up")
  const ups = conn.of("chardev").filter((f) => f.up)
  return { conn, epoch: ups.length > 0 ? ups.at(-1)!.epoch : conn.hello!.epoch }
}

/** The port level the relay was last told: the latest `port` frame, else hello.port. */
const toldLevel = (conn: RelayConn): string => {
  const p = conn.of("port").at(-1)
  return p !== undefined ? (p.open ? "open" : "closed") : conn.hello!.port
}
const lastWrote = (conn: RelayConn): number => conn.of("wrote").at(-1)?.pos ?? 0

describe("guest port gating (QMP)", () => {
  it("writes nothing while the guest port is closed, drops what came meanwhile, and writes again once it opens", async () => {
    const rig = await setup(false)
    const { conn, epoch } = await welcomed(rig)
    await until(() => toldLevel(conn) === "closed", "relay told the port is closed")
    const stale = message(1, 4, bytes(5000, 20))
    let pos = sendWrites(conn, epoch, 0, 1, stale)
    await until(() => lastWrote(conn) === pos, "the message settled (discarded)")
    expect(rig.chardev.receivedBytes().length).toBe(0)
    expect(rig.bridge.metric("vdrelay_bridge_guest_messages_discarded_total", { vm: "vm1", reason: "port-closed" })).toBe(1)
    rig.qmp.setGuestOpen(true)
    await until(() => toldLevel(conn) === "open", "relay told the port is open")
    const fresh = message(1, 6, bytes(8, 21))
    pos = sendWrites(conn, epoch, pos, 1, fresh)
    await until(() => lastWrote(conn) === pos, "written")
    await until(() => rig.chardev.receivedBytes().length >= rig.bridge.metric("vdrelay_bridge_guest_bytes_written_total"), "the chardev read what was written")
    expect(rig.chardev.receivedBytes().equals(fresh)).toBe(true)
    // Negotiation, the port's chardev, then (after the run state the migration code asks for) the port level.
    expect(rig.qmp.commands.slice(0, 2)).toEqual(["qmp_capabilities", "qom-get"])
    expect(rig.qmp.commands).toContain("query-chardev")
  })

  it("hangs up the chardev when the port closes after bytes were handed to it, so QEMU drops what it held; the next connection carries only new messages", async () => {
    const rig = await setup(true, {}, 50, { pausedReads: true })
    const { conn, epoch } = await welcomed(rig)
    await until(() => conn.of("port").some((p) => p.open), "open, restated after the welcome")
    const big = message(1, 4, bytes(4 << 20, 23))
    sendWrites(conn, epoch, 0, 1, big, 65_536)
    await until(() => rig.bridge.metric("vdrelay_bridge_guest_bytes_written_total") > 0, "writing started")
    rig.qmp.setGuestOpen(false) // QEMU would hand what the unread socket holds, the middle of `big`, to the next opener
    await until(() => rig.bridge.metric("vdrelay_bridge_chardev_hangups_total") === 1, "hung up")
    await until(() => conn.of("chardev").some((f) => f.up && f.epoch > epoch), "a new chardev connection: a new epoch")
    const next = conn.of("chardev").filter((f) => f.up).at(-1)!.epoch
    rig.qmp.setGuestOpen(true)
    await until(() => toldLevel(conn) === "open", "open again")
    const fresh = message(1, 6, bytes(8, 24))
    const pos = sendWrites(conn, next, 0, 1, fresh)
    await until(() => conn.of("wrote").some((w) => w.epoch === next && w.pos === pos), "fresh written")
    expect(rig.chardev.received).toHaveLength(2)
    rig.chardev.sockets[1]!.resume() // this fake QEMU reads nothing until told
    await until(() => rig.chardev.receivedBytes(1).length >= fresh.length, "fresh read")
    expect(rig.chardev.receivedBytes(1).equals(fresh)).toBe(true)
  })

  it("keeps the chardev connection when the port closes with nothing handed to it since it began", async () => {
    const rig = await setup(true)
    const { conn } = await welcomed(rig)
    await until(() => conn.of("port").some((p) => p.open), "open, restated after the welcome")
    rig.qmp.setGuestOpen(false)
    await until(() => toldLevel(conn) === "closed", "closed")
    rig.qmp.setGuestOpen(true)
    await until(() => toldLevel(conn) === "open", "open again")
    expect(rig.bridge.metric("vdrelay_bridge_chardev_hangups_total")).toBe(0)
    expect(rig.chardev.received).toHaveLength(1)
  })

  it("reports a close+open folded by the rate limit as a close then an open (the agent reopened), once", async () => {
    const rig = await setup(true)
    const { conn } = await welcomed(rig)
    await until(() => conn.of("port").some((p) => p.open), "open, restated after the welcome")
    const before = conn.of("port").length
    rig.qmp.setGuestOpen(false) // the close event goes out at once, its query already finds the port open again...
    rig.qmp.setGuestOpen(true) // ...and the reopen's own event is parked for the rate-limit window
    await until(() => rig.bridge.metric("vdrelay_bridge_qmp_events_total") === 2, "both events seen")
    const queries = rig.qmp.commands.length
    await until(() => rig.qmp.commands.length >= queries + 2, "a query after the late event, answered")
    expect(conn.of("port").slice(before).map((p) => p.open)).toEqual([false, true]) // the late open event adds nothing
    // The close event is acted on at once; the query after it finds the port open again.
    expect(rig.bridge.logs.filter((l) => l.event === "guest-port").map((l) => l["port"]).slice(-2)).toEqual(["closed", "open"])
  })

  it("holds agent bytes from a port believed closed until QMP confirms it reopened, so 'open' reaches the relay first", async () => {
    const rig = await setup(true, {}, 60_000) // the reopen's event stays parked by the rate limit for the whole test
    const { conn, epoch } = await welcomed(rig)
    await until(() => toldLevel(conn) === "open", "open")
    rig.qmp.setGuestOpen(false)
    await until(() => toldLevel(conn) === "closed", "closed")
    rig.qmp.setGuestOpen(true) // no event yet: QEMU throttles it, while the new opener already writes
    const announce = Buffer.from("0100000014000000010000000600000000000000000000000800000001000000e78d0300", "hex")
    rig.chardev.current!.write(announce)
    await until(() => conn.of("data").length > 0, "the opener's bytes forwarded")
    const openAt = conn.frames.findIndex((f) => f.t === "port" && f.open && conn.frames.indexOf(f) > conn.frames.findIndex((g) => g.t === "port" && !g.open))
    const dataAt = conn.frames.findIndex((f) => f.t === "data")
    expect(openAt).toBeGreaterThan(0)
    expect(openAt).toBeLessThan(dataAt)
    expect(conn.agentBytes(0).equals(announce)).toBe(true)
    expect(rig.bridge.metric("vdrelay_bridge_qmp_events_total")).toBe(1) // only the close: the truth came from the query
    void epoch
  })

  it("reads events of its own device only, treats an open event while open as a folded reopen, and skips qom-get when configured", async () => {
    const rig = await setup(true, { chardev: "charvdagent" })
    const { conn } = await welcomed(rig)
    await until(() => conn.of("port").some((p) => p.open), "open, restated after the welcome")
    const before = conn.of("port").length
    rig.qmp.emit("VSERPORT_CHANGE", { open: false, id: "some-other-port" })
    rig.qmp.emit("VSERPORT_CHANGE", { open: true, id: "vdport" }) // the close was folded into this event by QEMU
    await until(() => conn.of("port").length === before + 2, "a close and an open")
    expect(conn.of("port").slice(before).map((p) => p.open)).toEqual([false, true])
    expect(rig.bridge.metric("vdrelay_bridge_qmp_events_total")).toBe(1) // the other port's event is not ours
    expect(rig.qmp.commands).not.toContain("qom-get")
  })

  it("falls back to 'unknown' (writes allowed) when QMP goes away, and re-reads the level when it returns", async () => {
    const rig = await setup(false)
    const { conn, epoch } = await welcomed(rig)
    await until(() => toldLevel(conn) === "closed", "closed")
    rig.qmp.dropClients()
    await until(() => rig.bridge.metric("vdrelay_bridge_port_open") === -1, "unknown")
    const msg = message(1, 6, bytes(8, 22))
    const pos = sendWrites(conn, epoch, 0, 1, msg)
    await until(() => lastWrote(conn) === pos, "written")
    await until(() => rig.chardev.receivedBytes().length >= rig.bridge.metric("vdrelay_bridge_guest_bytes_written_total"), "the chardev read what was written")
    expect(rig.chardev.receivedBytes().equals(msg)).toBe(true)
    await until(() => rig.bridge.metric("vdrelay_bridge_port_open") === 0, "closed again after QMP reconnects")
  })
})
