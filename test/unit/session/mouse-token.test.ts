// MOUSE_STATE tokens (MOUSE_IN_FLIGHT in flight, then the latest pending) come back on the bridge's `wrote.server`: a
// pointer written at the chardev ahead of a bigger client-port message queued before it is not held until that message
// is written.
import { describe, expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { MOUSE_IN_FLIGHT } from "../../../src/session/guest-out.ts"
import { Sim, announce, bytes, concat, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

const AGENT_CAPS = [SPICE_VDAGENT_CAPS]

const ready = (): Sim => {
  const sim = new Sim()
  sim.attachBridge()
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
  sim.pump()
  sim.join("c1")
  sim.credit("c1", 1 << 30)
  return sim
}

const mouse = (sim: Sim, x: number): void => void sim.frame("c1", { t: "mouse", x, y: 1, buttons: 0, display: 0 })
const wrote = (sim: Sim, pos: number, server?: number) =>
  sim.step({ _tag: "BridgeFrameReceived", frame: { t: "wrote", epoch: sim.state.epoch, pos, ...(server === undefined ? {} : { server }) } })

describe("mouse token and wrote.server", () => {
  it("sends the pending MOUSE_STATE when the server port is confirmed, before the clipboard ahead of it is", () => {
    const sim = ready()
    sim.send("c1", MessageType.Clipboard, concat([u32le(0, 1), bytes(300_000)]))
    const before = sim.state.guest.wpos
    mouse(sim, 1)
    const mouseEnd = sim.state.guest.wpos
    for (let x = 2; x <= MOUSE_IN_FLIGHT; x++) mouse(sim, x)
    mouse(sim, 1000)
    mouse(sim, 1001)
    expect(sim.agentGot(MessageType.MouseState)).toHaveLength(MOUSE_IN_FLIGHT)
    wrote(sim, 0, mouseEnd - 1) // not yet past the first mouse: all still in flight
    expect(sim.agentGot(MessageType.MouseState)).toHaveLength(MOUSE_IN_FLIGHT)
    wrote(sim, 0, mouseEnd)
    const sent = sim.agentGot(MessageType.MouseState)
    expect(sent).toHaveLength(MOUSE_IN_FLIGHT + 1)
    expect(sent.at(-1)!.payload.subarray(0, 4)).toEqual(u32le(1001)) // the latest, 1000 was coalesced
    expect(sim.state.guest.wrote).toBeLessThan(before) // the clipboard is still unconfirmed
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("closes the bridge link on a server position past anything sent", () => {
    const sim = ready()
    mouse(sim, 1)
    const cmds = wrote(sim, 0, sim.state.guest.wpos + 1)
    expect(cmds.some((c) => c._tag === "CloseBridge")).toBe(true)
  })
})
