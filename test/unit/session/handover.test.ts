// Live migration on the relay (src/session/handover.ts, docs/migration.md): the source's bridge hands the agent
// connection over where its stream ends, the destination's bridge continues it. The agent connection is the guest's and
// did not end: a message the guest wrote across the switch reaches consoles whole, no epoch changes, no one is told the
// agent went, the agent is not asked for its caps again, and guest-bound messages in flight are answered once.
import { describe, expect, it } from "vitest"
import { LINK_VERSION } from "../../../src/link/types.ts"
import type { SessionCommand } from "../../../src/session/index.ts"
import { MessageType, Sim, announce, bytes, concat, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

const ready = (): Sim => {
  const sim = new Sim({ split: 30_000 })
  sim.attachBridge({ port: "open" })
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  return sim
}

/** The source says where its stream ends; the relay closes its link (the adapter then reports the close). */
const handOver = (sim: Sim, end: number): SessionCommand[] => {
  const cmds = sim.step({ _tag: "BridgeFrameReceived", frame: { t: "handover", epoch: sim.bridge.epoch, end } })
  sim.step({ _tag: "BridgeDetached", cause: "closed" })
  return cmds
}

/** The destination's bridge: its own epoch, positions from 0, `continues`. */
const destinationHello = (sim: Sim, continues = true): SessionCommand[] => {
  sim.bridge.connected = true
  return sim.step({ _tag: "BridgeAttached", hello: { t: "hello", v: LINK_VERSION, bridge: "br-dst", epoch: 424242, chardev: true, from: 0, wrote: 0, port: "open", ...(continues ? { continues } : {}) } })
}

const welcomeOf = (cmds: SessionCommand[]) => cmds.flatMap((c) => (c._tag === "SendToBridge" && c.frame.t === "welcome" ? [c.frame] : []))

describe("live migration handover", () => {
  it("a guest message written across the switch reaches the console whole; no new epoch, no agent flap, no caps request", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    const announces = sim.agentGot(MessageType.AnnounceCapabilities).length
    const epoch = sim.state.epoch
    const payload = concat([u32le(0, 1), bytes(100_000)])
    sim.agentSays(MessageType.Clipboard, payload)
    sim.pump(40_000) // the source read this much before STOP
    const cut = sim.bridge.sentTo
    const closing = handOver(sim, cut)
    expect(closing.some((x) => x._tag === "CloseBridge" && x.code === "going-away")).toBe(true)
    const w = welcomeOf(destinationHello(sim))
    expect(w).toEqual([expect.objectContaining({ epoch, agentBase: cut, guestBase: sim.state.guest.wrote })])
    // The destination's bytes, moved onto the relay's positions by the bridge (Rebase): the rest of the message.
    sim.pump()
    expect(sim.state.epoch).toBe(epoch)
    const clip = c.messages.filter((m) => m.type === MessageType.Clipboard)
    expect(clip.map((m) => m.payload.length)).toEqual([payload.length])
    expect(Buffer.compare(Buffer.from(clip[0]!.payload), Buffer.from(payload))).toBe(0)
    expect(c.frames.filter((f) => f.t === "agent" && !f.connected)).toEqual([])
    expect(c.frames.filter((f) => f.t === "abort")).toEqual([])
    expect(sim.agentGot(MessageType.AnnounceCapabilities).length).toBe(announces)
    expect(sim.tornAnywhere()).toEqual([])
    expect(sim.violations).toEqual([])
  })

  it("a guest-bound message the source never confirmed is answered resend once, and written once on the destination", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    const id = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]))
    // The source holds it (its writes paused at MIGRATION active) and hands over without a `wrote` for it.
    handOver(sim, sim.bridge.sentTo)
    expect(c.sent.get(id)!.fate).toEqual([])
    sim.bridge.wnext = 0 // the destination's bridge never saw it
    destinationHello(sim)
    expect(c.sent.get(id)!.fate).toEqual(["resend"])
    const mark = sim.all.length
    // The SDK sends it again under the same id (its key), and it is written on the destination.
    const body = concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)])
    sim.frame("c1", { t: "msg", id, type: MessageType.MonitorsConfig, size: body.length, data: body, end: true, again: true })
    sim.wrote()
    expect(c.sent.get(id)!.fate).toEqual(["resend", "ack"])
    const writes = sim.all.slice(mark).filter((x) => x._tag === "SendToBridge" && x.frame.t === "write" && x.frame.id === id)
    expect(writes.length).toBe(1)
    expect(sim.violations).toEqual([])
  })

  it("a `continues` hello without a handover is an ordinary new agent connection", () => {
    const sim = ready()
    sim.join("c1")
    const epoch = sim.state.epoch
    sim.detachBridge()
    const w = welcomeOf(destinationHello(sim))
    expect(w).toEqual([expect.objectContaining({ epoch: 424242 })])
    expect(w[0]!.agentBase).toBeUndefined()
    expect(sim.state.epoch).not.toBe(epoch)
  })

  it("a handover for another epoch is refused and the source's link stays", () => {
    const sim = ready()
    const cmds = sim.step({ _tag: "BridgeFrameReceived", frame: { t: "handover", epoch: sim.bridge.epoch + 1, end: 0 } })
    expect(cmds.some((x) => x._tag === "CloseBridge")).toBe(false)
    expect(sim.state.bridge).not.toBeNull()
  })
})

describe("live migration handover across a relay restart", () => {
  it("a restart between the source's handover and the destination's hello still continues: once, no flap", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    const epoch = sim.state.epoch
    const announces = sim.agentGot(MessageType.AnnounceCapabilities).length
    // A console message the source confirmed, and one it held (never written there).
    const done = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]))
    sim.wrote()
    const held = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(600, 800, 32, 0, 0)]))
    // A guest clipboard the source read whole before the stop.
    const before = concat([u32le(0, 1), bytes(20_000)])
    sim.agentSays(MessageType.Clipboard, before)
    sim.pump()
    const cut = sim.bridge.sentTo
    const guestBase = sim.state.guest.wrote
    handOver(sim, cut)
    sim.bridge.connected = false
    sim.restart()
    sim.bridge.wnext = guestBase // the destination's bridge never saw the held message
    const w = welcomeOf(destinationHello(sim))
    expect(w).toEqual([expect.objectContaining({ epoch, agentBase: cut, guestBase })])
    // The destination's next guest message.
    const after = concat([u32le(0, 1), bytes(30_000)])
    sim.agentSays(MessageType.Clipboard, after)
    sim.pump()
    expect(sim.state.epoch).toBe(epoch)
    const clip = c.messages.filter((m) => m.type === MessageType.Clipboard)
    expect(clip.map((m) => m.payload.length)).toEqual([before.length, after.length])
    expect(Buffer.compare(Buffer.from(clip[1]!.payload), Buffer.from(after))).toBe(0)
    expect(c.frames.filter((f) => f.t === "agent" && !f.connected)).toEqual([])
    expect(sim.agentGot(MessageType.AnnounceCapabilities).length).toBe(announces)
    // The confirmed message keeps its one ack; the held one is answered resend once and written once on the destination.
    expect(c.sent.get(done)!.fate).toEqual(["ack"])
    expect(c.sent.get(held)!.fate).toEqual(["resend"])
    const mark = sim.all.length
    const body = concat([u32le(1, 0), u32le(600, 800, 32, 0, 0)])
    sim.frame("c1", { t: "msg", id: held, type: MessageType.MonitorsConfig, size: body.length, data: body, end: true, again: true })
    sim.wrote()
    expect(c.sent.get(held)!.fate).toEqual(["resend", "ack"])
    expect(sim.all.slice(mark).filter((x) => x._tag === "SendToBridge" && x.frame.t === "write" && x.frame.id === held).length).toBe(1)
    expect(sim.tornAnywhere()).toEqual([])
    expect(sim.violations).toEqual([])
  })

  it("a guest message crossing the switch when the relay restarted is reported to the console, never torn", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    const payload = concat([u32le(0, 1), bytes(100_000)])
    sim.agentSays(MessageType.Clipboard, payload)
    sim.pump(40_000)
    handOver(sim, sim.bridge.sentTo)
    sim.bridge.connected = false
    sim.restart()
    destinationHello(sim)
    const after = concat([u32le(0, 1), bytes(3_000)])
    sim.agentSays(MessageType.Clipboard, after)
    sim.pump()
    // A restart mid-message ends that message towards consoles (as any relay restart does); the next one is whole.
    expect(c.frames.filter((f) => f.t === "abort").length).toBe(1)
    const clip = c.messages.filter((m) => m.type === MessageType.Clipboard)
    expect(clip.map((m) => m.payload.length)).toEqual([after.length])
    expect(c.frames.filter((f) => f.t === "agent" && !f.connected)).toEqual([])
    expect(sim.tornAnywhere()).toEqual([])
    expect(sim.violations).toEqual([])
  })

  it("the handover is persisted until the destination continues it, then forgotten", () => {
    const sim = ready()
    sim.join("c1")
    handOver(sim, sim.bridge.sentTo)
    expect(sim.persisted?.handover).toMatchObject({ epoch: sim.state.epoch, end: sim.bridge.sentTo })
    destinationHello(sim)
    expect(sim.persisted?.handover).toBeUndefined()
  })
})

describe("live migration handover, torn", () => {
  it("a handover that says a guest-bound message was cut at the stop is not continued: a new agent connection", () => {
    const sim = ready()
    const c = sim.join("c1")
    const epoch = sim.state.epoch
    sim.step({ _tag: "BridgeFrameReceived", frame: { t: "handover", epoch: sim.bridge.epoch, end: sim.bridge.sentTo, torn: true } })
    sim.step({ _tag: "BridgeDetached", cause: "closed" })
    const w = welcomeOf(destinationHello(sim))
    expect(w[0]!.agentBase).toBeUndefined()
    expect(sim.state.epoch).not.toBe(epoch)
    expect(c.frames.some((f) => f.t === "agent" && !f.connected)).toBe(true)
  })
})
