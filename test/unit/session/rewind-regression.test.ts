// Regression (found by the workerd hibernation test): after a restore the relay asks the bridge to rewind; data frames
// the bridge had already sent past that point arrive first and must be dropped as stale, not taken as a gap.
import { expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { Sim, announce, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

it("data frames sent before the bridge saw the rewind are stale: every message arrives whole, once, in order", () => {
  const sim = new Sim({ split: 36, limits: { initialClientCredit: 1 } })
  sim.attachBridge()
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  const c = sim.join("c1")
  sim.join("v1", "viewer") // grants no credit: it holds the acknowledgement back
  sim.credit("c1", 1 << 30)
  const start = sim.bridge.sentTo
  for (let i = 1; i <= 4; i++) sim.agentSays(MessageType.Reply, u32le(i, 1)) // 36 bytes each on the wire
  sim.pump(72) // two messages in; the relay has not acknowledged them (the viewer has no credit)
  expect(sim.bridge.acked).toBeLessThan(start + 72)
  sim.restart() // hibernation: the relay sends rewind(acked)
  // A frame the bridge sent before it read the rewind, from where it had got to:
  const stale = sim.bridge.agentRange(start + 72, start + 108).slice()
  sim.step({ _tag: "BridgeFrameReceived", frame: { t: "data", epoch: sim.bridge.epoch, pos: start + 72, bytes: stale } })
  sim.pump()
  sim.credit("c1", 1 << 30) // credit is not kept across a restart (src/session/README.md)
  const replies = c.messages.filter((m) => m.type === MessageType.Reply).map((m) => m.payload[0])
  expect(replies).toEqual([1, 2, 3, 4])
  expect(sim.state.counters["vdrelay_agent_gaps_total"] ?? 0).toBe(0)
  expect(sim.tornAnywhere()).toEqual([])
})
