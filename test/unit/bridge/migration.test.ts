// Live migration in the bridge's core (src/bridge/migration.ts, vm-core.ts; docs/migration.md), with fake ports: the
// source stops writing to the guest at MIGRATION active and reads without the relay's window, hands over once the
// migration completed, everything read was sent, no write is in flight and the socket fell silent (or ended); the
// destination keeps its tunnel shut while QEMU awaits the migration, says `continues` after RESUME, and moves its
// positions onto the relay's stream.
import { describe, expect, it } from "vitest"
import { defaultLimits } from "../../../src/bridge/config.ts"
import { jsonLogger } from "../../../src/bridge/log.ts"
import { Metrics } from "../../../src/bridge/metrics.ts"
import { HANDOVER_QUIET_MS, Rebase } from "../../../src/bridge/migration.ts"
import type { ChardevPort, LinkPort } from "../../../src/bridge/ports.ts"
import { peerRecvQ } from "../../../src/bridge/socket-queue.ts"
import { VmCore } from "../../../src/bridge/vm-core.ts"
import { decodeBridgeToRelay, decodeRelayToBridge, encodeBridgeToRelay, encodeRelayToBridge } from "../../../src/link/bridge-codec.ts"
import { LINK_VERSION, type BridgeToRelay } from "../../../src/link/types.ts"
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"
import { until } from "./fixtures.ts"

const makeCore = () => {
  const lines: Array<Record<string, unknown>> = []
  const core = new VmCore("vm-1", "br", defaultLimits, jsonLogger((l) => void lines.push(JSON.parse(l) as Record<string, unknown>), "debug"), new Metrics())
  const written: Uint8Array[] = []
  let pending: Array<() => void> = []
  const chardev: ChardevPort = {
    write: (bytes, done) => {
      written.push(bytes)
      pending.push(() => done())
    },
    pause: () => {},
    resume: () => {},
    close: () => {},
  }
  const sent: BridgeToRelay[] = []
  const link: LinkPort = { send: (f) => void sent.push(f), congested: false }
  const flush = (): void => {
    const p = pending
    pending = []
    for (const f of p) f()
  }
  return { core, chardev, link, sent, written, flush, lines }
}

const monitors = (n: number): Uint8Array => encodeChunkedMessage(2, 6, new Uint8Array(n))

describe("bridge core: source side of a live migration", () => {
  it("holds guest writes from MIGRATION active, reads past the window, hands over where its stream ends", async () => {
    const { core, chardev, link, sent, written, flush } = makeCore()
    core.migration.status("running", Date.now())
    core.chardevConnected(chardev)
    core.portLevel("open", "test")
    core.tunnelOpened(link)
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: core.epoch, ack: 0, window: 1000 })
    core.migration.event("MIGRATION", { status: "setup" }, Date.now())
    core.migration.event("MIGRATION", { status: "active" }, Date.now())
    const msg = monitors(100)
    core.relayFrame({ t: "write", epoch: core.epoch, pos: 0, port: 2, data: msg, end: true })
    flush()
    expect(written).toEqual([])
    // The relay's window is 1000 bytes; migrating, the chardev is read anyway (QEMU must hold no backlog at STOP).
    expect(core.agentBytes(new Uint8Array(5000))).toBe(true)
    expect(core.readHeadroom).toBeGreaterThan(1000)
    core.migration.event("STOP", undefined, Date.now())
    core.migration.event("MIGRATION", { status: "completed" }, Date.now())
    expect(sent.filter((f) => f.t === "handover")).toEqual([])
    // The relay acknowledges; the rest is sent; after the quiet time the handover follows.
    core.relayFrame({ t: "ack", epoch: core.epoch, pos: 1000 })
    core.relayFrame({ t: "ack", epoch: core.epoch, pos: 2000 })
    core.relayFrame({ t: "ack", epoch: core.epoch, pos: 3000 })
    core.relayFrame({ t: "ack", epoch: core.epoch, pos: 4000 })
    await until(() => sent.some((f) => f.t === "handover"), "the handover", HANDOVER_QUIET_MS * 40)
    expect(sent.filter((f) => f.t === "handover")).toEqual([{ t: "handover", epoch: core.epoch, end: 5000 }])
    expect(written).toEqual([])
    expect(core.migration.role).toBe("retired")
    expect(core.mayLink()).toBe(false)
  })

  it("a cancelled migration writes what it held and reads within the window again", () => {
    const { core, chardev, link, written, flush } = makeCore()
    core.migration.status("running", Date.now())
    core.chardevConnected(chardev)
    core.portLevel("open", "test")
    core.tunnelOpened(link)
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: core.epoch, ack: 0, window: 1000 })
    core.migration.event("MIGRATION", { status: "active" }, Date.now())
    const msg = monitors(100)
    core.relayFrame({ t: "write", epoch: core.epoch, pos: 0, port: 2, data: msg, end: true })
    expect(written).toEqual([])
    core.migration.event("MIGRATION", { status: "cancelled" }, Date.now())
    flush()
    expect(Buffer.concat(written)).toEqual(Buffer.from(msg))
    expect(core.readHeadroom).toBeLessThanOrEqual(1000)
    expect(core.mayLink()).toBe(true)
  })

  it("an EOF from the source QEMU after completion still hands over what was read", async () => {
    const { core, chardev, link, sent } = makeCore()
    core.migration.status("running", Date.now())
    core.chardevConnected(chardev)
    core.portLevel("open", "test")
    core.tunnelOpened(link)
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: core.epoch, ack: 0, window: 1 << 20 })
    core.migration.event("MIGRATION", { status: "active" }, Date.now())
    core.agentBytes(new Uint8Array(300))
    core.migration.event("MIGRATION", { status: "completed" }, Date.now())
    core.chardevLost("eof")
    const epoch = core.epoch
    const tail = sent.filter((f) => f.t === "handover" || f.t === "chardev")
    // The handover first (the relay takes no frame of this link after it).
    expect(tail[0]).toEqual({ t: "handover", epoch, end: 300 })
  })
})

describe("bridge core: destination side of a live migration", () => {
  it("no tunnel while inmigrate; after RESUME and the port open it says continues, then speaks the relay's positions", () => {
    const { core, chardev, link, sent, flush } = makeCore()
    expect(core.mayLink()).toBe(false) // QMP has not said yet: this host may not have the VM
    core.migration.status("inmigrate", Date.now())
    core.chardevConnected(chardev)
    core.portLevel("closed", "inmigrate")
    expect(core.mayLink()).toBe(false)
    core.migration.event("MIGRATION", { status: "active" }, Date.now())
    core.migration.event("RESUME", undefined, Date.now() + 10) // the chardev connected before it
    expect(core.mayLink()).toBe(false) // the port opens ~1 ms after RESUME
    core.portLevel("open", "VSERPORT_CHANGE")
    expect(core.mayLink()).toBe(true)
    core.agentBytes(new Uint8Array([1, 2, 3]))
    core.tunnelOpened(link)
    expect(sent[0]).toMatchObject({ t: "hello", continues: true, from: 0, wrote: 0 })
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: 77, ack: 5000, window: 1 << 20, agentBase: 5000, guestBase: 900 })
    expect(sent.filter((f) => f.t === "data")).toEqual([{ t: "data", epoch: 77, pos: 5000, bytes: new Uint8Array([1, 2, 3]) }])
    const msg = monitors(10)
    core.relayFrame({ t: "write", epoch: 77, pos: 900, port: 2, data: msg, end: true })
    flush()
    expect(sent.filter((f) => f.t === "wrote").at(-1)).toMatchObject({ pos: 900 + msg.length })
    expect(sent.filter((f) => f.t === "wrote").at(-1)).toMatchObject({ epoch: 77 })
    expect(core.migration.role).toBe("none")
  })

  it("not continued: it hangs up and reconnects only once the guest's agent closed its port (it saw the hang-up)", async () => {
    const m = makeCore()
    const { core, link, sent } = m
    const closes: string[] = []
    core.migration.status("inmigrate", Date.now())
    core.chardevConnected({ ...m.chardev, close: (cause) => void closes.push(cause) })
    core.portLevel("closed", "inmigrate")
    core.migration.event("RESUME", undefined, Date.now() + 10)
    core.portLevel("open", "VSERPORT_CHANGE")
    core.tunnelOpened(link)
    expect(sent[0]).toMatchObject({ t: "hello", continues: true })
    // A welcome without bases: the relay starts a new agent connection (a torn handover).
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: core.epoch, ack: 0, window: 1 << 20 })
    expect(closes.length).toBe(1)
    core.chardevLost(closes[0]!)
    let ready = false
    const gate = core.reconnectReady().then(() => void (ready = true))
    await new Promise((r) => setTimeout(r, 50))
    expect(ready).toBe(false) // reconnecting now could hide the hang-up from the agent
    core.portLevel("closed", "VSERPORT_CHANGE")
    await gate
    expect(ready).toBe(true)
    // Any other deliberate hang-up reconnects at once.
    await core.reconnectReady()
  })

  it("a chardev connected after RESUME missed a guest write: a plain hello, a new connection", () => {
    const { core, chardev, link, sent } = makeCore()
    core.migration.status("inmigrate", Date.now())
    core.migration.event("RESUME", undefined, Date.now() - 10)
    core.chardevConnected(chardev)
    core.portLevel("open", "query")
    core.tunnelOpened(link)
    expect(sent[0]).toMatchObject({ t: "hello" })
    expect((sent[0] as { continues?: boolean }).continues).toBeUndefined()
  })
})

describe("Rebase", () => {
  it("moves frames of the local epoch onto the relay's positions and back, and leaves other epochs alone", () => {
    const r = new Rebase()
    r.set(5, 9, 1000, 200)
    expect(r.out({ t: "data", epoch: 5, pos: 10, bytes: new Uint8Array(1) })).toMatchObject({ epoch: 9, pos: 1010 })
    expect(r.out({ t: "wrote", epoch: 5, pos: 3, server: 4 })).toEqual({ t: "wrote", epoch: 9, pos: 203, server: 204 })
    expect(r.out({ t: "chardev", epoch: 6, up: true })).toEqual({ t: "chardev", epoch: 6, up: true })
    expect(r.in({ t: "write", epoch: 9, pos: 250, port: 1, data: new Uint8Array(1), end: true })).toMatchObject({ epoch: 5, pos: 50 })
    expect(r.in({ t: "ack", epoch: 9, pos: 400 })).toEqual({ t: "ack", epoch: 5, pos: 0 })
    expect(r.in({ t: "ack", epoch: 8, pos: 400 })).toEqual({ t: "ack", epoch: 8, pos: 400 })
  })
})

describe("link frames of a migration", () => {
  it("hello.continues, handover and welcome bases round-trip; a base without the other is refused", () => {
    const hello = { t: "hello", v: LINK_VERSION, bridge: "b", epoch: 3, chardev: true, from: 0, wrote: 0, port: "open", continues: true } as const
    expect(decodeBridgeToRelay(encodeBridgeToRelay(hello))).toEqual({ _tag: "Ok", value: hello })
    const handover = { t: "handover", epoch: 3, end: 12345 } as const
    expect(decodeBridgeToRelay(encodeBridgeToRelay(handover))).toEqual({ _tag: "Ok", value: handover })
    const welcome = { t: "welcome", v: LINK_VERSION, epoch: 9, ack: 5, window: 100, agentBase: 5, guestBase: 7 } as const
    expect(decodeRelayToBridge(encodeRelayToBridge(welcome))).toEqual({ _tag: "Ok", value: welcome })
    const half = encodeRelayToBridge({ t: "welcome", v: LINK_VERSION, epoch: 9, ack: 5, window: 100, agentBase: 5 } as never)
    expect(decodeRelayToBridge(half)).toMatchObject({ _tag: "Invalid", reason: "bad-field" })
  })
})

describe("bridge core: a message begun when the migration starts", () => {
  const bigClipboard = (): Uint8Array => encodeChunkedMessage(1, 4, new Uint8Array(150_000))

  it("is finished before writes stop (a prefix left in the guest would be torn by what follows)", () => {
    const { core, chardev, link, written, flush } = makeCore()
    core.migration.status("running", Date.now())
    core.chardevConnected(chardev)
    core.portLevel("open", "test")
    core.tunnelOpened(link)
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: core.epoch, ack: 0, window: 1 << 20 })
    const big = bigClipboard()
    core.relayFrame({ t: "write", epoch: core.epoch, pos: 0, port: 1, data: big, end: true })
    expect(written.length).toBe(1) // its first batch is in flight
    core.migration.event("MIGRATION", { status: "active" }, Date.now())
    const mouse = monitors(10)
    core.relayFrame({ t: "write", epoch: core.epoch, pos: big.length, port: 2, data: mouse, end: true })
    for (let i = 0; i < 20; i++) flush()
    // The whole clipboard, and nothing begun after MIGRATION active (the mouse may have slipped in between batches
    // only while the clipboard was unfinished).
    const portOf = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true)
    expect(Buffer.concat(written.filter((b) => portOf(b) === 1))).toEqual(Buffer.from(big))
    const server = Buffer.concat(written.filter((b) => portOf(b) === 2))
    expect(server.length === 0 || server.equals(Buffer.from(mouse))).toBe(true)
    // Once the clipboard is done, nothing new starts.
    const more = monitors(20)
    core.relayFrame({ t: "write", epoch: core.epoch, pos: big.length + mouse.length, port: 2, data: more, end: true })
    flush()
    expect(written.some((b) => Buffer.from(b).equals(Buffer.from(more)))).toBe(false)
  })

  it("a STOP while it is unfinished makes the handover say torn", async () => {
    const { core, chardev, link, sent, written, flush } = makeCore()
    core.migration.status("running", Date.now())
    core.chardevConnected(chardev)
    core.portLevel("open", "test")
    core.tunnelOpened(link)
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: core.epoch, ack: 0, window: 1 << 20 })
    const big = bigClipboard()
    core.relayFrame({ t: "write", epoch: core.epoch, pos: 0, port: 1, data: big, end: true })
    expect(written.length).toBe(1)
    core.migration.event("MIGRATION", { status: "active" }, Date.now())
    core.migration.event("STOP", undefined, Date.now()) // the first batch's write has not completed
    core.migration.event("MIGRATION", { status: "completed" }, Date.now())
    core.chardevLost("eof")
    flush() // the socket's end fails the write in flight
    expect(sent.filter((f) => f.t === "handover")).toEqual([{ t: "handover", epoch: expect.any(Number), end: 0, torn: true }])
  })
})

describe("bridge core: what QEMU had not taken from the socket at STOP", () => {
  /** A message written whole (its write done: in the kernel's socket), then the migration, QEMU's socket asked at STOP. */
  const stopWith = async (unread: number | undefined) => {
    const m = makeCore()
    const { core, link, sent, flush, lines } = m
    const chardev: ChardevPort = { ...m.chardev, unread: async () => unread }
    core.migration.status("running", Date.now())
    core.chardevConnected(chardev)
    core.portLevel("open", "test")
    core.tunnelOpened(link)
    core.relayFrame({ t: "welcome", v: LINK_VERSION, epoch: core.epoch, ack: 0, window: 1 << 20 })
    const msg = monitors(3000)
    core.relayFrame({ t: "write", epoch: core.epoch, pos: 0, port: 2, data: msg, end: true })
    flush()
    expect(sent.filter((f) => f.t === "wrote").at(-1)).toMatchObject({ pos: msg.length })
    core.migration.event("MIGRATION", { status: "active" }, Date.now())
    core.migration.event("STOP", undefined, Date.now())
    core.migration.event("MIGRATION", { status: "completed" }, Date.now())
    await until(() => sent.some((f) => f.t === "handover"), "the handover", HANDOVER_QUIET_MS * 40)
    return { handover: sent.filter((f) => f.t === "handover"), lines }
  }

  it("bytes left in the socket never reach the guest: the handover says torn and counts them", async () => {
    const { handover, lines } = await stopWith(1200)
    expect(handover).toEqual([{ t: "handover", epoch: expect.any(Number), end: 0, torn: true }])
    expect(lines.filter((l) => l.event === "migration-untaken").map((l) => l.bytes)).toEqual([1200])
    expect(lines.filter((l) => l.event === "migration-stop").map((l) => [l.handed, l.unread])).toEqual([[monitors(3000).length, 1200]])
  })

  it("an empty socket at STOP: everything handed reached the guest, the handover continues", async () => {
    const { handover, lines } = await stopWith(0)
    expect(handover).toEqual([{ t: "handover", epoch: expect.any(Number), end: 0 }])
    expect(lines.filter((l) => l.event === "migration-untaken")).toEqual([])
  })

  it("a socket that cannot be asked changes nothing (logged unknown)", async () => {
    const { handover, lines } = await stopWith(undefined)
    expect(handover).toEqual([{ t: "handover", epoch: expect.any(Number), end: 0 }])
    expect(lines.find((l) => l.event === "migration-handover")?.untaken).toBe("unknown")
  })
})

describe("the peer's receive queue from `ss -x`", () => {
  // Captured with `ss -xH` on this machine: a client socket (inode 986187) and QEMU's accepted end (986188), 100000
  // bytes written and unread; the client's own Send-Q counts buffer sizes, not bytes.
  const ss = [
    "u_str ESTAB 0      0                                      * 41234 * 41235",
    "u_str ESTAB 0      103168                                * 986187 * 986188",
    "u_str ESTAB 100000 0                   /tmp/i13/probe.sock 986188 * 986187",
    "u_str LISTEN 0 4096 /run/x.sock 5555 * 0",
  ].join("\n")

  it("is the Recv-Q of the socket whose peer is ours, not our own line", () => {
    expect(peerRecvQ(ss, "986187")).toBe(100000)
    expect(peerRecvQ(ss, "986188")).toBe(0)
    expect(peerRecvQ(ss, "777")).toBeUndefined()
    expect(peerRecvQ("garbage\n\n", "1")).toBeUndefined()
  })
})
