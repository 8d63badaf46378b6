// Session actor basics: welcome, agent attach with the relay's own ANNOUNCE(request=1), caps cached and edited,
// messages both ways whole, acknowledgements and credit.
import { describe, expect, it } from "vitest"
import { Cap, MessageType } from "../../../src/protocol/constants.ts"
import { buildCaps, hasCap } from "../../../src/protocol/caps.ts"
import { decodeAnnounceCapabilities } from "../../../src/protocol/codec-misc.ts"
import { Sim, announce, bytes, concat, same, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

const AGENT_CAPS = [SPICE_VDAGENT_CAPS]

describe("session basics", () => {
  it("agent attach: the relay asks for caps itself (the agent does not re-announce on host reconnect)", () => {
    const sim = new Sim()
    sim.attachBridge()
    const ann = sim.agentGot(MessageType.AnnounceCapabilities)
    expect(ann).toHaveLength(1)
    const a = decodeAnnounceCapabilities(ann[0]!.payload)
    expect(a._tag === "Ok" && a.value.request).toBe(true)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("caps are cached from the agent, edited by policy, and given to a joining viewer without touching the guest", () => {
    const sim = new Sim({ policy: { copyPaste: false, fileTransfer: false } })
    sim.attachBridge()
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    sim.pump()
    const before = sim.bridge.written.length
    const v = sim.join("v1", "viewer")
    expect(v.agent?.connected).toBe(true)
    const caps = v.agent!.caps!
    expect(hasCap(caps, Cap.ClipboardByDemand)).toBe(false)
    expect(hasCap(caps, Cap.ClipboardSelection)).toBe(false)
    expect(hasCap(caps, Cap.FileXferDisabled)).toBe(true)
    expect(hasCap(caps, Cap.MouseState)).toBe(true)
    expect(sim.bridge.written.length).toBe(before)
    expect(sim.persisted?.agentCaps).toEqual(AGENT_CAPS)
  })

  it("a controller's message reaches the agent whole, chunked ≤ 2048, and is acked once written", () => {
    const sim = new Sim()
    sim.attachBridge()
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    sim.pump()
    const c = sim.join("c1")
    const payload = u32le(1, 2 | 0, 1024, 768, 32, 0, 0)
    const mc = concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)])
    const id = sim.send("c1", MessageType.MonitorsConfig, mc, { frag: 7 })
    expect(payload.length).toBeGreaterThan(0)
    const got = sim.agentGot(MessageType.MonitorsConfig)
    expect(got).toHaveLength(1)
    expect(got[0]!.payload).toEqual(mc)
    expect(c.sent.get(id)!.fate).toEqual([])
    sim.wrote()
    expect(c.sent.get(id)!.fate).toEqual(["ack"])
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a 3 MiB agent clipboard streams to the controller whole, within the window, acknowledged piecewise", () => {
    const sim = new Sim({ split: 100_000 })
    sim.attachBridge()
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    sim.pump()
    const c = sim.join("c1")
    sim.credit("c1", 1 << 30)
    const clip = bytes(3 * 1024 * 1024)
    sim.agentSays(MessageType.Clipboard, clip)
    sim.pump()
    const got = c.messages.filter((m) => m.type === MessageType.Clipboard)
    expect(got).toHaveLength(1)
    expect(same(got[0]!.payload, clip)).toBe(true)
    expect(sim.bridge.acked).toBe(sim.bridge.agentLen)
    expect(sim.tornAnywhere()).toEqual([])
  })
})
void buildCaps
