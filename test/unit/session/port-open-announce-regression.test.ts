// Regression (found by `npm run chaos`, fault chardev-close): the chardev reconnected while QEMU still reported the guest
// port closed; the relay's caps request for the new connection reached a port the bridge knew closed and was dropped,
// and when the port opened the relay did not ask again (it only did on closed → open), so the agent never announced
// and the consoles never saw it come back.
import { expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { Sim, announce } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

const requests = (sim: Sim): number => sim.agentGot(MessageType.AnnounceCapabilities).filter((m) => m.payload[0] === 1).length

it("asks the agent for its caps when the port opens on a new connection that has not announced", () => {
  const sim = new Sim()
  sim.attachBridge({ epoch: 1, port: "open" })
  sim.agentSays(MessageType.AnnounceCapabilities, announce(true, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  const c = sim.join("c1")
  sim.port(false) // the guest's port closes (VM reboot) ...
  sim.chardev(true, 2) // ... and the chardev reconnects before the port's reopen is reported
  const before = requests(sim)
  sim.port(true)
  expect(requests(sim)).toBe(before + 1)
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  expect(c.agent).toMatchObject({ connected: true, caps: [SPICE_VDAGENT_CAPS] })
})
