// Traffic across a client resume: lastSeq and the half-received message (relay → client), resends not written twice
// (client → agent), file transfers of a departed controller, and seats across a Durable Object restart.
import { describe, expect, it } from "vitest"
import { FileXferResult, MessageType, Port } from "../../../src/protocol/constants.ts"
import { bytes, concat, u32le } from "./sim.ts"
import { GRACE, disconnects, ready, statusOf, timer, welcome } from "./resume-kit.ts"

describe("relay → client after a resume", () => {
  it("nothing at or below lastSeq is sent; the message half received on the old link is aborted; later messages flow", () => {
    const sim = ready({ split: 5_000, limits: { initialClientCredit: 1 } })
    const a = sim.join("c1")
    sim.credit("c1", 2_500)
    for (let i = 1; i <= 3; i++) sim.agentSays(MessageType.Reply, u32le(i, 1))
    sim.agentSays(MessageType.MonitorsConfig, bytes(8_000))
    sim.pump()
    expect(a.partial.size).toBe(1)
    const lastSeq = a.lastWholeSeq()
    const half = [...a.partial.keys()][0]!
    expect(lastSeq).toBe(half - 1)
    const b = sim.resume("c1b", "c1")
    sim.credit("c1b", 1 << 30)
    sim.pump()
    sim.agentSays(MessageType.Reply, u32le(9, 1))
    sim.pump()
    const seqs = b.frames.flatMap((f) => (f.t === "msg" || f.t === "more" ? [f.seq] : []))
    expect(seqs.every((q) => q > lastSeq)).toBe(true)
    expect(b.frames).toContainEqual({ t: "abort", seq: half, reason: "dropped-by-disconnect" })
    expect(seqs).not.toContain(half)
    expect(b.messages.map((m) => m.payload[0])).toEqual([9])
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a lastSeq beyond every seq handed out cannot starve the console", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    const b = sim.resume("c1b", "c1", { lastSeq: 1e12 })
    sim.agentSays(MessageType.Reply, u32le(5, 1))
    sim.pump()
    expect(b.messages.map((m) => m.payload[0])).toEqual([5])
  })
})

describe("client → agent after a resume", () => {
  it("resent ids are not written twice: answered ones get their answer again, in-flight ones their ack once", () => {
    const sim = ready()
    const a = sim.join("c1")
    const m1 = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    const m2 = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]))
    sim.leave("c1", "error")
    // m1 is written while the console is away (its ack is lost); m2 is still in flight when it resumes.
    sim.step({ _tag: "BridgeFrameReceived", frame: { t: "wrote", epoch: sim.bridge.epoch, pos: sim.bridge.wnext - 1 } })
    expect(a.sent.get(m1)!.fate).toEqual([])
    const b = sim.resume("c1b", "c1")
    b.nextId = m1
    const r1 = sim.send("c1b", MessageType.ClipboardRelease, u32le(0))
    const r2 = sim.send("c1b", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]), { frag: 10 })
    expect([r1, r2]).toEqual([m1, m2])
    expect(b.sent.get(m1)!.fate).toEqual(["ack"])
    expect(b.sent.get(m2)!.fate).toEqual([])
    sim.wrote()
    expect(b.sent.get(m2)!.fate).toEqual(["ack"])
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(1)
    expect(sim.agentGot(MessageType.MonitorsConfig)).toHaveLength(1)
    // A new id after those goes through as usual.
    sim.send("c1b", MessageType.ClipboardRelease, u32le(0))
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(2)
    expect(b.creditBack).toBeGreaterThan(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a message the bridge lost while the console was away (resend) is accepted again when resent", () => {
    const sim = ready()
    sim.join("c1")
    sim.bridge.connected = false // lost in the dying tunnel
    const m1 = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.bridge.connected = true
    sim.step({ _tag: "BridgeDetached", cause: "error" })
    sim.violations.length = 0
    sim.leave("c1", "error")
    sim.attachBridge()
    const b = sim.resume("c1b", "c1")
    b.nextId = m1
    sim.send("c1b", MessageType.ClipboardRelease, u32le(0))
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(1)
    sim.wrote()
    expect(b.sent.get(m1)!.fate).toEqual(["ack"])
  })
})

describe("file transfers of a departed controller", () => {
  const start = (id: number): Uint8Array => concat([u32le(id), new TextEncoder().encode("[vdagent-file-xfer]\nname=a.txt\nsize=3\n\0")])

  it("open transfers are cancelled towards the agent at once; the resumed console hears CANCELLED and its data is refused", () => {
    const sim = ready()
    sim.join("c1")
    sim.credit("c1", 1 << 30)
    sim.send("c1", MessageType.FileXferStart, start(7))
    sim.send("c1", MessageType.FileXferStart, start(8))
    sim.agentSays(MessageType.FileXferStatus, u32le(7, FileXferResult.CanSendData))
    sim.agentSays(MessageType.FileXferStatus, u32le(8, FileXferResult.Success)) // 8 is over: nothing to cancel
    sim.pump()
    sim.leave("c1", "error")
    const toAgent = sim.agentGot(MessageType.FileXferStatus).map((m) => ({ port: m.port, ...statusOf(m.payload) }))
    expect(toAgent).toEqual([{ port: Port.Client, id: 7, result: FileXferResult.Cancelled }])
    expect(disconnects(sim)).toHaveLength(0)
    const b = sim.resume("c1b", "c1")
    b.nextId = sim.clients.get("c1")!.nextId // message ids are unique per seat, across its links
    const told = b.messages.filter((m) => m.type === MessageType.FileXferStatus).map((m) => statusOf(m.payload))
    expect(told).toEqual([{ id: 7, result: FileXferResult.Cancelled }])
    const d = sim.send("c1b", MessageType.FileXferData, concat([u32le(7, 3, 0), bytes(3)]))
    expect(b.sent.get(d)!.fate).toEqual(["dropped-by-disconnect"])
    expect(sim.agentGot(MessageType.FileXferData)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a transfer the console cancelled itself, or CLIENT_DISCONNECTED already ended, is not cancelled again", () => {
    const sim = ready()
    sim.join("c1")
    sim.send("c1", MessageType.FileXferStart, start(3))
    sim.send("c1", MessageType.FileXferStatus, u32le(3, FileXferResult.Cancelled))
    sim.send("c1", MessageType.FileXferStart, start(4))
    sim.join("c2") // takeover: CLIENT_DISCONNECTED ends 4 on the agent
    sim.leave("c2", "error")
    const cancels = sim.agentGot(MessageType.FileXferStatus).map((m) => statusOf(m.payload))
    expect(cancels).toEqual([{ id: 3, result: FileXferResult.Cancelled }]) // the console's own
  })
})

describe("across a Durable Object restart", () => {
  it("a controller whose link was lost in the restart can resume its seat from the persisted tokens", () => {
    const sim = ready()
    const a = sim.join("c1")
    sim.join("v1", "viewer")
    expect(sim.persisted!.seats?.map((x) => [x.token, x.control])).toEqual([["tok-c1", true], ["tok-v1", false]])
    a.closed = { code: "evicted", detail: "" } // its WebSocket did not survive
    sim.departed.add("c1")
    sim.restart()
    expect(sim.state.controller).toBeNull()
    expect(disconnects(sim)).toHaveLength(0)
    sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "controller", resumed: true })
    timer(sim, sim.now + 2 * GRACE)
    expect(disconnects(sim)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("if it does not come back, the agent hears CLIENT_DISCONNECTED when the grace ends", () => {
    const sim = ready()
    const a = sim.join("c1")
    a.closed = { code: "evicted", detail: "" }
    sim.departed.add("c1")
    const cmds = sim.restart()
    const at = cmds.find((c) => c._tag === "SetTimer")
    expect(at).toEqual({ _tag: "SetTimer", at: sim.now + GRACE })
    timer(sim, sim.now + GRACE)
    expect(disconnects(sim)).toHaveLength(1)
  })

  it("a seat departed before the restart stays resumable; a live link keeps its token in its attachment", () => {
    const sim = ready()
    sim.join("c1")
    sim.join("v1", "viewer")
    sim.leave("c1", "error")
    sim.restart()
    expect(sim.state.clients.get("v1")!.token).toBe("tok-v1")
    sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "controller", resumed: true })
    sim.leave("v1", "error")
    sim.resume("v1b", "v1")
    expect(welcome(sim, "v1b")).toMatchObject({ role: "viewer", resumed: true })
  })
})
