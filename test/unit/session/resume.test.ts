// Client resume (DESIGN.md invariant 5, "clients can resume too"): seats kept for a grace after a network loss,
// CLIENT_DISCONNECTED held for that grace, single-use tokens, lastSeq, resends not written twice, transfers cancelled.
import { describe, expect, it } from "vitest"
import { FileXferResult, MessageType, Port } from "../../../src/protocol/constants.ts"
import type { RelayToClient } from "../../../src/link/types.ts"
import { ClientModel, Sim, announce, bytes, concat, u32le } from "./sim.ts"

const AGENT_CAPS = [0x00038de7]
const GRACE = 10_000

const ready = (o: ConstructorParameters<typeof Sim>[0] = {}): Sim => {
  const sim = new Sim(o)
  sim.attachBridge()
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
  sim.pump()
  return sim
}

const welcome = (sim: Sim, id: string): Extract<RelayToClient, { t: "welcome" }> => {
  const w = sim.clients.get(id)!.frames.find((f) => f.t === "welcome")
  if (w?.t !== "welcome") throw new Error(`${id} has no welcome`)
  return w
}
const disconnects = (sim: Sim) => sim.agentGot(MessageType.ClientDisconnected)
const timer = (sim: Sim, at: number): void => {
  sim.now = at - 1 // step() adds 1
  sim.step({ _tag: "TimerFired" })
}
const statusOf = (p: Uint8Array) => ({ id: new DataView(p.buffer, p.byteOffset).getUint32(0, true), result: new DataView(p.buffer, p.byteOffset).getUint32(4, true) })

describe("resume keeps the seat", () => {
  it("a controller lost to the network resumes as controller; the agent never hears CLIENT_DISCONNECTED", () => {
    const sim = ready()
    sim.join("c1")
    expect(welcome(sim, "c1").resume).toBe("tok-c1")
    sim.leave("c1", "error")
    expect(disconnects(sim)).toHaveLength(0)
    expect(sim.state.controller).toBeNull()
    const b = sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "controller", resumed: true, resume: "tok-c1b" })
    expect(b.role).toBe("controller")
    expect(sim.state.controller).toBe("c1b")
    timer(sim, sim.now + 2 * GRACE)
    expect(disconnects(sim)).toHaveLength(0)
    sim.send("c1b", MessageType.ClipboardRelease, u32le(0))
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(1)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("after someone else took control it resumes as a viewer; the takeover told the agent at once", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    sim.join("c2")
    expect(disconnects(sim)).toHaveLength(1)
    const b = sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "viewer", resumed: true })
    expect(b.role).toBe("viewer")
    expect(sim.state.controller).toBe("c2")
    timer(sim, sim.now + 2 * GRACE)
    expect(disconnects(sim)).toHaveLength(1)
  })

  it("a viewer seat resumes as a viewer even if its hello asks for control; a token that no longer allows control releases it", () => {
    const sim = ready()
    sim.join("v1", "viewer")
    sim.leave("v1", "error")
    sim.resume("v1b", "v1")
    expect(welcome(sim, "v1b")).toMatchObject({ role: "viewer", resumed: true })
    sim.join("c1")
    sim.leave("c1", "error")
    sim.resume("c1b", "c1", { role: "viewer", maxRole: "viewer" })
    expect(welcome(sim, "c1b")).toMatchObject({ role: "viewer", resumed: true })
    expect(disconnects(sim)).toHaveLength(1)
    expect(sim.state.controller).toBeNull()
  })

  it("a link the relay still thinks open (half-open TCP) is closed and its seat moves to the new link", () => {
    const sim = ready()
    const a = sim.join("c1")
    sim.resume("c1b", "c1")
    expect(a.closed?.code).toBe("replaced")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "controller", resumed: true })
    expect(sim.state.controller).toBe("c1b")
    expect([...sim.state.clients.keys()]).toEqual(["c1b"])
    expect(disconnects(sim)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("tokens", () => {
  it("an expired token joins fresh, with the role its hello asks for", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    sim.now += GRACE + 1
    sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b").resumed).toBeUndefined()
    expect(welcome(sim, "c1b").role).toBe("controller")
    expect(disconnects(sim)).toHaveLength(1) // the held seat expired first
    sim.resume("v1", "c1", { role: "viewer", token: "never-issued" })
    expect(welcome(sim, "v1")).toMatchObject({ role: "viewer" })
    expect(welcome(sim, "v1").resumed).toBeUndefined()
  })

  it("a token is single use: offered again, it joins fresh and takes nothing", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    sim.resume("c1b", "c1")
    sim.resume("x", "c1", { role: "viewer" })
    expect(welcome(sim, "x").resumed).toBeUndefined()
    expect(welcome(sim, "x").role).toBe("viewer")
    expect(sim.clients.get("c1b")!.closed).toBeNull()
    expect(sim.state.controller).toBe("c1b")
  })

  it("a clean close ends the seat: CLIENT_DISCONNECTED at once, the token no longer resumes", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "closed")
    expect(disconnects(sim)).toHaveLength(1)
    expect(disconnects(sim)[0]!.port).toBe(Port.Server)
    sim.resume("c1b", "c1", { role: "viewer" })
    expect(welcome(sim, "c1b").resumed).toBeUndefined()
  })

  it("a join without a token gets an empty one, which leaves no seat behind", () => {
    const sim = ready()
    sim.clients.set("n", new ClientModel("n"))
    sim.step({ _tag: "ClientJoined", client: "n", maxRole: "controller", hello: { t: "hello", v: 1, client: "n", role: "controller", caps: [] } })
    expect(welcome(sim, "n").resume).toBe("")
    sim.leave("n", "error")
    expect(sim.state.seats.size).toBe(0)
    expect(disconnects(sim)).toHaveLength(1)
    sim.join("m", "viewer", [], "viewer", { token: "" })
    expect(welcome(sim, "m").resumed).toBeUndefined()
  })
})

describe("CLIENT_DISCONNECTED", () => {
  it("is held for the grace after a network loss, then sent when the timer fires", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    const set = sim.commands.filter((c) => c._tag === "SetTimer")
    expect(set).toEqual([{ _tag: "SetTimer", at: sim.now + GRACE }])
    const until = sim.now + GRACE
    timer(sim, until - 1)
    expect(disconnects(sim)).toHaveLength(0)
    timer(sim, until)
    expect(disconnects(sim)).toHaveLength(1)
    expect(disconnects(sim)[0]!.port).toBe(Port.Server)
    sim.resume("c1b", "c1", { role: "viewer" })
    expect(welcome(sim, "c1b").resumed).toBeUndefined()
  })

  it("the departed controller's half-sent message is aborted at once and never reaches the agent", () => {
    const sim = ready()
    sim.join("c1")
    const payload = concat([u32le(0, 1), bytes(200_000)])
    sim.send("c1", MessageType.Clipboard, payload, { frag: 50_000, stopAfter: 2 })
    sim.leave("c1", "error")
    expect(sim.commands.some((c) => c._tag === "SendToBridge" && c.frame.t === "abort")).toBe(true)
    expect(disconnects(sim)).toHaveLength(0)
    sim.wrote()
    sim.resume("c1b", "c1")
    sim.send("c1b", MessageType.Clipboard, payload, { frag: 50_000 })
    const got = sim.agentGot(MessageType.Clipboard)
    expect(got).toHaveLength(1)
    expect(got[0]!.payload.length).toBe(payload.length)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("the bridge grace and a held seat share one timer: each deadline is asked for in turn", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    const seatUntil = sim.now + GRACE
    sim.now += 3000
    sim.detachBridge()
    timer(sim, seatUntil)
    expect(sim.commands.filter((c) => c._tag === "SetTimer")).toEqual([{ _tag: "SetTimer", at: seatUntil + 3001 }])
    sim.attachBridge()
  })
})

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
