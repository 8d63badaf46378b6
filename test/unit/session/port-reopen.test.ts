// Guest port close → open (QMP VSERPORT_CHANGE via the bridge's `port` frame): spice-vdagentd does not re-announce
// after reopening its port on an error (spec §6), so the relay asks for caps itself, as on a new epoch; the agent's own
// announce of a fresh start, if it comes too, is handled as usual (no disconnect/connect flap).
import { describe, expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { decodeAnnounceCapabilities } from "../../../src/protocol/codec-misc.ts"
import { RELAY_DEFAULT_CAPS } from "../../../src/session/agent-link.ts"
import { Sim, announce } from "./sim.ts"
import { AGENT_CAPS, ready } from "./resume-kit.ts"

const relayAnnounces = (sim: Sim) =>
  sim.agentGot(MessageType.AnnounceCapabilities).map((m) => {
    const a = decodeAnnounceCapabilities(m.payload)
    if (a._tag !== "Ok") throw new Error("bad announce")
    return a.value
  })

const agentStates = (sim: Sim, id: string) => sim.clients.get(id)!.frames.flatMap((f) => (f.t === "agent" ? [f.connected] : []))

describe("port reopen: the relay asks for the agent's caps", () => {
  it("close → open: ANNOUNCE(request=1) with the controller's caps; the agent's answer restores its caps for clients", () => {
    const sim = ready()
    const c = sim.join("c1", "controller", [0x1234])
    const before = relayAnnounces(sim).length
    sim.port(false)
    expect(c.agent).toMatchObject({ connected: false, caps: null })
    sim.port(true)
    const asked = relayAnnounces(sim).slice(before)
    expect(asked).toEqual([{ _tag: "AnnounceCapabilities", request: true, caps: [0x1234] }])
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    sim.pump()
    expect(c.agent).toMatchObject({ connected: true, caps: expect.any(Array) })
    expect(sim.state.rawCaps).toEqual(AGENT_CAPS)
    expect(agentStates(sim, "c1").slice(-3)).toEqual([false, true, true])
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("close → open with no controller: the relay's default caps, exactly as on a new epoch", () => {
    const sim = ready()
    sim.join("v1", "viewer")
    const before = relayAnnounces(sim).length
    sim.port(false)
    sim.port(true)
    expect(relayAnnounces(sim).slice(before)).toEqual([{ _tag: "AnnounceCapabilities", request: true, caps: [...RELAY_DEFAULT_CAPS] }])
  })

  it("the agent's own ANNOUNCE(request=1) coming too (a fresh start) is handled as usual: the controller answers it, no flap", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.port(false)
    sim.port(true)
    const states = agentStates(sim, "c1").length
    sim.agentSays(MessageType.AnnounceCapabilities, announce(true, AGENT_CAPS))
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS)) // its answer to the relay's request
    sim.pump()
    expect(agentStates(sim, "c1").slice(states)).not.toContain(false)
    expect(c.agent?.connected).toBe(true)
    const toController = c.messages.filter((m) => m.type === MessageType.AnnounceCapabilities).map((m) => m.payload[0])
    expect(toController.slice(-2)).toEqual([1, 0]) // the request reaches the controller, so it answers
    expect(sim.state.counters["vdrelay_agent_restarts_total"]).toBeUndefined()
    // A later unprompted request is still a restart.
    sim.agentSays(MessageType.AnnounceCapabilities, announce(true, AGENT_CAPS))
    sim.pump()
    expect(sim.state.counters["vdrelay_agent_restarts_total"]).toBe(1)
  })

  it("no request when the opener's announce arrived before the QMP event, nor on unknown → open once caps came; viewers joining never cause one", () => {
    const sim = ready()
    sim.join("c1")
    sim.port(false)
    const before = relayAnnounces(sim).length
    // After a throttled reopen the new opener's bytes reach the relay ~1 s before its open:true event (spec §12).
    sim.agentSays(MessageType.AnnounceCapabilities, announce(true, AGENT_CAPS))
    sim.pump()
    sim.port(true)
    expect(relayAnnounces(sim).length).toBe(before)
    sim.join("v1", "viewer")
    sim.join("v2", "viewer")
    expect(relayAnnounces(sim).length).toBe(before)

    const fresh = new Sim()
    fresh.attachBridge({ port: "unknown" })
    const atEpoch = relayAnnounces(fresh).length
    expect(atEpoch).toBe(1) // asked when the epoch began
    fresh.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    fresh.pump()
    fresh.port(true) // the agent answered: no second request (port-open-announce-regression.test.ts: when it has not)
    expect(relayAnnounces(fresh).length).toBe(atEpoch)
  })
})
