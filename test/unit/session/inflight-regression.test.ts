// Regression (found by `npm run fuzz -- --target session-client`): a console with more than 64 messages written to the
// bridge but not yet confirmed lost the answers of the oldest across a restart, because the attachment kept only the
// newest 64 ids; they were never acked nor noticed (DESIGN invariant 1: a sender always hears what became of it).
import { expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { Sim, announce, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

it("every message in flight across a restart is answered, however many there are", () => {
  const sim = new Sim()
  sim.attachBridge()
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  const c = sim.join("c1")
  // The guest is stalled: nothing is confirmed written while the console keeps sending small messages.
  const ids = Array.from({ length: 150 }, () => sim.send("c1", MessageType.DisplayConfig, u32le(0, 32)))
  sim.restart()
  sim.wrote()
  for (const id of ids) expect(c.sent.get(id)?.fate, `message ${id}`).toEqual(["ack"])
})
