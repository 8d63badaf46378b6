// Regression (found by `npm run chaos`, fault worker-restart): after workerd restarted, the relay asked the agent for its
// caps again (ANNOUNCE request=1) on the unchanged agent connection; the agent reset its clipboard grab serials, the
// controller's SDK did not, and it ignored every guest grab as stale until the serials met again.
import { expect, it } from "vitest"
import { restore } from "../../../src/session/index.ts"
import { MessageType } from "../../../src/protocol/constants.ts"
import { Sim, announce } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

it("a relay restart on the same agent connection sends the agent no new caps request", () => {
  const sim = new Sim()
  sim.attachBridge({ epoch: 5, port: "open" })
  sim.agentSays(MessageType.AnnounceCapabilities, announce(true, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  sim.join("c1")
  sim.wrote()
  const requestsBefore = sim.agentGot(MessageType.AnnounceCapabilities).filter((m) => m.payload[0] === 1).length
  // workerd killed: every socket gone, the object rebuilt from storage alone; the bridge and the console come back.
  const r = restore(sim.persisted!, { clients: [] }, sim.now + 1)
  sim.state = r.state
  for (const m of sim.clients.values()) if (m.closed === null) m.closed = { code: "gone", detail: "" }
  sim.bridge.connected = false
  sim.run(r.commands)
  sim.attachBridge({ port: "open" })
  sim.resume("c2", "c1")
  sim.pump()
  sim.wrote()
  expect(sim.agentGot(MessageType.AnnounceCapabilities).filter((m) => m.payload[0] === 1).length).toBe(requestsBefore)
})
