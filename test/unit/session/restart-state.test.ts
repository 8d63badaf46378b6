// What a Durable Object restart must not disturb: guest write positions (from the bridge's attachment after
// hibernation, from the bridge's hello after an eviction) and each client's relay→client credit (its attachment).
import { describe, expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import type { ClientLinkAttachment } from "../../../src/session/index.ts"
import { Sim, bytes, concat, u32le } from "./sim.ts"
import { ready } from "./resume-kit.ts"

const warnings = (sim: Sim) => sim.all.flatMap((c) => (c._tag === "Log" && c.level === "warn" ? [c.event] : []))
const grab = () => concat([u32le(0, 0), u32le(1)])
const mc = (w: number) => concat([u32le(1, 0), u32le(w, 768, 32, 0, 0)])

describe("guest write position after a restart", () => {
  it("a restart that keeps the bridge link (hibernation), after guest-bound traffic: positions continue, no warning, every message acked once", () => {
    const sim = ready()
    const c = sim.join("c1")
    const before = [sim.send("c1", MessageType.ClipboardGrab, grab()), sim.send("c1", MessageType.MonitorsConfig, mc(1024))]
    sim.wrote()
    const inflight = sim.send("c1", MessageType.MonitorsConfig, mc(800)) // written after the restart
    const wpos = sim.state.guest.wpos
    expect(sim.attachments.get("bridge")).toMatchObject({ kind: "bridge", wpos, wrote: wpos - 56 })
    sim.restart()
    expect(sim.state.guest).toMatchObject({ wpos, wrote: wpos - 56 })
    sim.wrote()
    const after = [sim.send("c1", MessageType.ClipboardGrab, grab()), sim.send("c1", MessageType.MonitorsConfig, mc(640))]
    sim.wrote()
    for (const id of [...before, inflight, ...after]) expect(c.sent.get(id)!.fate).toEqual(["ack"])
    expect(sim.agentGot().filter((m) => m.port === 1 && m.type !== MessageType.AnnounceCapabilities)).toHaveLength(5)
    expect(warnings(sim)).toEqual([])
    expect(sim.tornAnywhere()).toEqual([]) // the bridge model checks every write lands at the position it expects
  })

  it("a restart that loses the bridge link (eviction): the bridge's hello gives the positions, no 'wrote past' warning, positions continue", () => {
    const sim = ready()
    const c = sim.join("c1")
    const before = sim.send("c1", MessageType.ClipboardGrab, grab())
    sim.wrote()
    expect(sim.bridge.wnext).toBeGreaterThan(0)
    sim.bridge.connected = false // every socket is dropped with the evicted object
    sim.leave("c1", "error")
    sim.restart()
    expect(sim.state.guest.known).toBe(false)
    sim.attachBridge() // same epoch: hello.wrote is what the bridge wrote (the announce and the grab)
    expect(sim.state.guest.wpos).toBe(sim.bridge.wnext)
    const d = sim.resume("c2", "c1")
    const after = [sim.send("c2", MessageType.ClipboardGrab, grab()), sim.send("c2", MessageType.MonitorsConfig, mc(1280))]
    sim.wrote()
    expect(c.sent.get(before)!.fate).toEqual(["ack"])
    for (const id of after) expect(d.sent.get(id)!.fate).toEqual(["ack"])
    expect(warnings(sim)).toEqual([])
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a bridge claiming more than was sent in a known epoch is still reported", () => {
    const sim = ready()
    sim.detachBridge()
    sim.bridge.wnext += 100
    sim.attachBridge()
    expect(warnings(sim)).toEqual(["bridge wrote past what was sent"])
  })

  it("a new agent connection announced on the link: the bridge attachment names the new epoch at once", () => {
    const sim = ready()
    sim.chardev(true, 2)
    expect(sim.attachments.get("bridge")).toMatchObject({ epoch: 2, wpos: sim.state.guest.wpos })
  })
})

describe("relay → client credit across a restart", () => {
  it("a restart does not overrun a client: credit it had spent stays spent", () => {
    const sim = ready({ limits: { initialClientCredit: 4_000, clientFragmentBytes: 500 } })
    const c = sim.join("c1")
    sim.agentSays(MessageType.MonitorsConfig, bytes(6_000))
    sim.pump()
    const got = () => c.frames.reduce((n, f) => n + (f.t === "msg" || f.t === "more" ? f.data.length : 0), 0)
    expect(got()).toBe(4_000)
    expect((sim.attachments.get("c1") as ClientLinkAttachment).credit).toBe(0)
    sim.restart()
    sim.pump()
    expect(got()).toBe(4_000) // nothing beyond what it granted (the default would have sent 4 000 more)
    sim.credit("c1", 12_000)
    expect(c.messages.filter((m) => m.type === MessageType.MonitorsConfig)).toHaveLength(1)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a restart does not stall a client: credit it granted and the relay had not used is still there", () => {
    const sim = ready({ limits: { initialClientCredit: 1, clientFragmentBytes: 500 } })
    const c = sim.join("c1")
    sim.credit("c1", 20_000)
    sim.agentSays(MessageType.MonitorsConfig, bytes(3_000))
    sim.pump()
    expect(c.messages).toHaveLength(1)
    sim.restart()
    sim.agentSays(MessageType.MonitorsConfig, bytes(6_000, 2))
    sim.pump()
    // Without its grants the relay would stop after one fragment, and the console, which granted 20 000, would wait.
    expect(c.messages.map((m) => m.payload.length)).toEqual([3_000, 6_000])
    expect(sim.state.clients.get("c1")!.credit).toBe(20_001 - 9_000)
    expect(sim.tornAnywhere()).toEqual([])
  })
})
