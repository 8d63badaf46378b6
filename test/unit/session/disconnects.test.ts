// Every disconnect, one path each (spec §5.5, §5.7): the seven cases of the issue, plus garbage on each side.
import { describe, expect, it } from "vitest"
import { MessageType, Port } from "../../../src/protocol/constants.ts"
import { decodeAnnounceCapabilities } from "../../../src/protocol/codec-misc.ts"
import { Sim, announce, bytes, concat, same, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

const AGENT_CAPS = [SPICE_VDAGENT_CAPS]

const ready = (o: ConstructorParameters<typeof Sim>[0] = {}): Sim => {
  const sim = new Sim(o)
  sim.attachBridge()
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
  sim.pump()
  return sim
}

const agentFrames = (sim: Sim, id: string) => sim.clients.get(id)!.frames.filter((f) => f.t === "agent" || f.t === "abort")

describe("case 1: agent gone mid agent→client message", () => {
  it("the partial is dropped, clients get abort then 'agent disconnected', their in-flight messages are reported", () => {
    const sim = ready({ split: 40_000 })
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    const id = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]))
    sim.agentSays(MessageType.Clipboard, concat([u32le(0, 1), bytes(100_000)]))
    sim.pump(60_000)
    expect(c.partial.size).toBe(1)
    sim.chardev(false)
    const tail = agentFrames(sim, "c1").slice(-2)
    expect(tail[0]).toMatchObject({ t: "abort", reason: "dropped-by-disconnect" })
    expect(tail[1]).toMatchObject({ t: "agent", connected: false, caps: null })
    expect(c.partial.size).toBe(0)
    expect(c.sent.get(id)!.fate).toEqual(["dropped-by-disconnect"])
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("case 2: agent (re)attached mid write", () => {
  it("queued writes to the old agent are discarded and reported; clients told connected; caps asked afresh with the controller's caps", () => {
    const sim = ready()
    const c = sim.join("c1", "controller", [0x1234])
    const payload = concat([u32le(0, 1), bytes(200_000)])
    const id = sim.send("c1", MessageType.Clipboard, payload, { frag: 50_000, stopAfter: 2 })
    sim.chardev(true, 2)
    expect(c.sent.get(id)!.fate).toEqual(["dropped-by-disconnect"])
    expect(c.agent).toMatchObject({ connected: true })
    const ann = sim.agentGot(MessageType.AnnounceCapabilities)
    const a = decodeAnnounceCapabilities(ann.at(-1)!.payload)
    expect(a._tag === "Ok" && a.value).toMatchObject({ request: true, caps: [0x1234] })
    // the agent answers; a viewer joining later does not cause another announce
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    sim.pump()
    const n = sim.agentGot(MessageType.AnnounceCapabilities).length
    sim.join("v1", "viewer")
    expect(sim.agentGot(MessageType.AnnounceCapabilities).length).toBe(n)
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("case 3: controller gone mid client→agent message", () => {
  it("the partial never reaches the agent (bridge abort) and CLIENT_DISCONNECTED follows on the server port", () => {
    const sim = ready()
    sim.join("c1")
    sim.send("c1", MessageType.Clipboard, concat([u32le(0, 1), bytes(200_000)]), { frag: 50_000, stopAfter: 2 })
    sim.leave("c1")
    expect(sim.agentGot(MessageType.Clipboard)).toHaveLength(0)
    const cd = sim.agentGot(MessageType.ClientDisconnected)
    expect(cd).toHaveLength(1)
    expect(cd[0]!.port).toBe(Port.Server)
    // the next controller's message arrives whole and parses
    sim.join("c2")
    sim.send("c2", MessageType.ClipboardRelease, u32le(0))
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(1)
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("case 4: client gone mid agent→client message", () => {
  it("the rest is discarded for that client only; no command names it afterwards", () => {
    const sim = ready({ split: 30_000, policy: { viewersSeeClipboard: true } })
    const c = sim.join("c1")
    const v = sim.join("v1", "viewer")
    sim.credit("c1", 1 << 30)
    sim.credit("v1", 1 << 30)
    const clip = concat([u32le(0, 1), bytes(100_000)])
    sim.agentSays(MessageType.Clipboard, clip)
    sim.pump(40_000)
    sim.leave("v1")
    sim.pump()
    expect(same(c.messages.at(-1)!.payload, clip)).toBe(true)
    expect(v.messages.filter((m) => m.type === MessageType.Clipboard)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("case 5: bridge tunnel gone / resumed", () => {
  it("resume neither duplicates nor loses agent messages", () => {
    const sim = ready({ split: 7_000 })
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    for (let i = 0; i < 5; i++) sim.agentSays(MessageType.Reply, u32le(2, 1))
    const clip = concat([u32le(0, 1), bytes(50_000)])
    sim.agentSays(MessageType.Clipboard, clip)
    sim.pump(20_000)
    sim.detachBridge()
    sim.attachBridge()
    sim.pump()
    expect(c.messages.filter((m) => m.type === MessageType.Reply)).toHaveLength(5)
    expect(c.messages.filter((m) => m.type === MessageType.Clipboard)).toHaveLength(1)
    expect(c.frames.filter((f) => f.t === "agent" && !f.connected)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a half-streamed guest-bound message is aborted: its sender is told resend", () => {
    const sim = ready()
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.Clipboard, concat([u32le(0, 1), bytes(200_000)]), { frag: 50_000, stopAfter: 2 })
    sim.detachBridge()
    expect(c.sent.get(id)!.fate).toEqual(["resend"])
    sim.attachBridge()
    expect(sim.agentGot(MessageType.Clipboard)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("whole messages sent but not confirmed before the drop: acked if the bridge wrote them, else resend", () => {
    const sim = ready()
    const c = sim.join("c1")
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.bridge.connected = false // frames sent now are lost in the dying tunnel
    const b = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.bridge.connected = true
    sim.step({ _tag: "BridgeDetached", cause: "error" })
    sim.violations.length = 0
    sim.attachBridge()
    expect(c.sent.get(a)!.fate).toEqual(["ack"])
    expect(c.sent.get(b)!.fate).toEqual(["resend"])
  })

  it("a tunnel that does not come back within the grace period: clients are told the agent is gone", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.detachBridge()
    expect(c.agent?.connected).toBe(true)
    sim.now += 60_000
    sim.step({ _tag: "TimerFired" })
    expect(c.agent?.connected).toBe(false)
    sim.attachBridge()
    expect(c.agent?.connected).toBe(true)
  })
})

describe("case 6: Durable Object restarted", () => {
  it("state is rebuilt from storage and attachments: caps, roles, agent position; nothing duplicated", () => {
    const sim = ready({ split: 9_000 })
    const c = sim.join("c1")
    const v = sim.join("v1", "viewer")
    sim.credit("c1", 1 << 30)
    for (let i = 0; i < 4; i++) sim.agentSays(MessageType.Reply, u32le(2, 1))
    sim.pump()
    const before = c.messages.length
    sim.restart()
    expect(sim.state.controller).toBe("c1")
    expect(sim.state.rawCaps).toEqual(AGENT_CAPS)
    sim.pump()
    sim.agentSays(MessageType.Reply, u32le(5, 1))
    sim.pump()
    expect(c.messages.length).toBe(before + 1)
    expect(v.closed).toBeNull()
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("replay after a restart skips what a client already has whole, and delivers what another had not received", () => {
    const sim = ready({ limits: { initialClientCredit: 1 } })
    const c = sim.join("c1")
    const v = sim.join("v1", "viewer")
    sim.credit("c1", 1 << 30)
    sim.agentSays(MessageType.MonitorsConfig, bytes(3000))
    sim.agentSays(MessageType.MonitorsConfig, bytes(3000, 2))
    sim.pump()
    expect(c.messages.filter((m) => m.type === MessageType.MonitorsConfig)).toHaveLength(2)
    expect(sim.bridge.acked).toBeLessThan(sim.bridge.agentLen) // the viewer holds the acknowledgement back
    sim.restart()
    sim.pump()
    sim.credit("v1", 1 << 30)
    expect(c.messages.filter((m) => m.type === MessageType.MonitorsConfig)).toHaveLength(2)
    expect(v.messages.filter((m) => m.type === MessageType.MonitorsConfig).map((m) => m.payload[0])).toEqual([bytes(3000)[0], bytes(3000, 2)[0]])
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("restart in the middle of a large agent message: clients drop their part, later messages flow", () => {
    const sim = ready({ split: 64 * 1024, limits: { agentWindow: 256 * 1024 } })
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    sim.agentSays(MessageType.Clipboard, concat([u32le(0, 1), bytes(1024 * 1024)]))
    sim.agentSays(MessageType.Reply, u32le(2, 1))
    sim.pump(600 * 1024)
    expect(c.partial.size).toBe(1)
    expect(sim.persisted!.agentResume?._tag).toBe("Mid")
    sim.restart()
    expect(c.partial.size).toBe(0)
    sim.pump()
    expect(c.messages.filter((m) => m.type === MessageType.Reply)).toHaveLength(1)
    expect(c.messages.filter((m) => m.type === MessageType.Clipboard)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a client message half received at the restart: the client is told resend, its remaining frames are absorbed", () => {
    const sim = ready()
    const c = sim.join("c1")
    const payload = concat([u32le(0, 1), bytes(200_000)])
    const id = sim.send("c1", MessageType.Clipboard, payload, { frag: 50_000, stopAfter: 2 })
    sim.restart()
    expect(c.sent.get(id)!.fate).toEqual(["resend"])
    expect(sim.bridge.frames.some((f) => (f as { t: string }).t === "abort")).toBe(true)
    sim.sendRest("c1", id, payload, 100_000, 50_000)
    expect(c.closed).toBeNull()
    // Sent again under its id, as the SDK does (a later id would be told resend until it comes: per-sender order).
    c.nextId = id
    sim.send("c1", MessageType.Clipboard, payload, { frag: 50_000 })
    expect(sim.agentGot(MessageType.Clipboard)).toHaveLength(1)
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("case 7: agent restarted without a port event", () => {
  it("an unprompted ANNOUNCE(request=1) resets: clients hear disconnected then connected, writes to the old agent are reported", () => {
    const sim = ready()
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.agentSays(MessageType.AnnounceCapabilities, announce(true, AGENT_CAPS))
    sim.pump()
    expect(c.sent.get(id)!.fate).toEqual(["dropped-by-disconnect"])
    const states = c.frames.filter((f) => f.t === "agent").slice(-2)
    expect(states.map((f) => f.t === "agent" && f.connected)).toEqual([false, true])
    // the controller gets the request so that it answers with its caps
    expect(c.messages.at(-1)!.type).toBe(MessageType.AnnounceCapabilities)
  })
})

describe("garbage", () => {
  it("garbage from the agent: typed metric, resync, no torn or misrouted message, later messages delivered", () => {
    const sim = ready({ split: 13 })
    const c = sim.join("c1")
    const v = sim.join("v1", "viewer")
    sim.credit("c1", 1 << 30)
    sim.agentSays(MessageType.Reply, u32le(2, 1))
    sim.bridge.appendRaw(concat([u32le(1, 40), u32le(7, 3, 0, 0, 12), bytes(5)])) // wrong protocol number
    sim.bridge.appendRaw(bytes(300, 9))
    sim.agentSays(MessageType.Reply, u32le(3, 1))
    sim.pump()
    expect(Object.keys(sim.state.counters).some((k) => k.startsWith("vdrelay_agent_garbage_total"))).toBe(true)
    expect(c.messages.filter((m) => m.type === MessageType.Reply).map((m) => m.payload[0])).toEqual([2, 3])
    expect(v.closed).toBeNull()
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("an undecodable client frame closes that client only", () => {
    const sim = ready()
    const a = sim.join("c1")
    const b = sim.join("v1", "viewer")
    sim.step({ _tag: "FrameRejected", from: { client: "c1" }, detail: "not msgpack" })
    expect(a.closed?.code).toBe("protocol")
    expect(b.closed).toBeNull()
    expect(sim.agentGot(MessageType.ClientDisconnected)).toHaveLength(1)
  })

  it("a bridge overrunning its window is closed; the agent is kept for the grace period", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.step({ _tag: "BridgeFrameReceived", frame: { t: "data", epoch: sim.bridge.epoch, pos: sim.bridge.agentLen + 10 * 1024 * 1024, bytes: bytes(10) } })
    expect(sim.commands.some((x) => x._tag === "CloseBridge")).toBe(true)
    expect(c.closed).toBeNull()
  })
})
