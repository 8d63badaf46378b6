// Regression (found on the real VM, docs/reliability.md §2b findings 1 and 2, fault bridge-kill): the bridge restarted
// within the tunnel's grace on a new chardev connection; the relay asked the agent for its caps (ANNOUNCE request=1),
// which to spice-vdagentd is a new client (grab serials zeroed, the console's clipboard released, transfers ended), but
// the consoles still saw the same agent: the SDK kept its serials (the clipboard dead both ways) and a clipboard request
// whose answer died with the old connection waited forever. Whenever the relay sends request=1, every console that saw
// the agent hears it go away first.
import { describe, expect, it } from "vitest"
import type { RelayToClient } from "../../../src/link/types.ts"
import { MessageType } from "../../../src/protocol/constants.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"
import { type ClientModel, Sim, announce, bytes, concat, u32le } from "./sim.ts"

const AGENT_CAPS = [SPICE_VDAGENT_CAPS]

/** ANNOUNCE_CAPABILITIES request=1 the agent got, in order. */
const requests = (sim: Sim): number => sim.agentGot(MessageType.AnnounceCapabilities).filter((m) => m.payload[0] === 1).length

/** The agent as one client saw it, frame by frame from `from`: "up" (caps known), "up?" (caps not yet), "down", or an abort. */
const story = (c: ClientModel, from = 0): string[] =>
  c.frames.slice(from).flatMap((f: RelayToClient) =>
    f.t === "agent" ? [f.connected ? (f.caps === null ? "up?" : "up") : "down"] : f.t === "abort" ? [`abort ${f.reason}`] : [],
  )

const ready = (): { sim: Sim; c: ClientModel } => {
  const sim = new Sim({ split: 40_000 })
  sim.attachBridge({ epoch: 1, port: "open" })
  sim.agentSays(MessageType.AnnounceCapabilities, announce(true, AGENT_CAPS))
  sim.pump()
  const c = sim.join("c1")
  sim.credit("c1", 1 << 30)
  expect(c.agent).toMatchObject({ connected: true, caps: AGENT_CAPS })
  return { sim, c }
}

describe("a relay caps request (request=1) ends the agent session the consoles saw", () => {
  it("bridge restarted within the grace, mid guest clipboard: abort, agent down, agent up, then its caps", () => {
    const { sim, c } = ready()
    const v = sim.join("v1", "viewer")
    sim.credit("v1", 1 << 30)
    sim.agentSays(MessageType.Clipboard, concat([u32le(0, 1), bytes(300_000)]))
    sim.pump(120_000)
    expect(c.partial.size).toBe(1)
    const from = c.frames.length
    const fromV = v.frames.length
    const before = requests(sim)
    sim.detachBridge() // the bridge's process killed: its tunnel and chardev connection die with it
    sim.attachBridge({ epoch: 2, port: "open" }) // started again, on a new chardev connection
    expect(requests(sim)).toBe(before + 1)
    expect(story(c, from)).toEqual(["abort dropped-by-disconnect", "down", "up?"])
    expect(story(v, fromV)).toEqual(["down", "up?"])
    expect(c.partial.size).toBe(0)
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    sim.pump()
    expect(story(c, from)).toEqual(["abort dropped-by-disconnect", "down", "up?", "up"])
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("the guest port reopens: consoles already saw the agent go, and hear it once more only as it comes back", () => {
    const { sim, c } = ready()
    const from = c.frames.length
    sim.port(false)
    const before = requests(sim)
    sim.port(true)
    expect(requests(sim)).toBe(before + 1)
    expect(story(c, from)).toEqual(["down", "up?"])
  })

  it("a resume on the same connection whose caps are known asks nothing and tells nothing", () => {
    const { sim, c } = ready()
    const from = c.frames.length
    const before = requests(sim)
    sim.detachBridge()
    sim.attachBridge({ port: "open" })
    expect(requests(sim)).toBe(before)
    expect(story(c, from)).toEqual([])
  })
})
