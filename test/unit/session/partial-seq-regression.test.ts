// Regression (found by `npm run fuzz -- --target session-client`): a whole message of the relay's own (here the
// FILE_XFER_STATUS refusing a transfer) sent while an agent message was half sent made the relay forget the half-sent
// one; when the agent connection was then replaced it was never aborted, and the console kept a torn partial forever.
import { expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { Sim, announce, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

it("aborts an agent message half sent to a console even after a whole relay-made message went out meanwhile", () => {
  const sim = new Sim({ split: 20, policy: { fileTransfer: false } })
  sim.attachBridge({ epoch: 1, port: "open" })
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  const c = sim.join("c1")
  sim.credit("c1", 1 << 20)
  sim.agentSays(MessageType.Reply, u32le(3, 1))
  sim.pump(sim.bridge.agentLen - sim.bridge.sentTo - 4) // the REPLY arrives but for its last bytes
  expect([...c.partial.keys()]).toHaveLength(1)
  sim.send("c1", MessageType.FileXferStart, new Uint8Array([1, 0, 0, 0, 0])) // refused: a whole STATUS goes back
  sim.chardev(true, 2) // the agent connection is replaced: the half-sent REPLY will never end
  expect([...c.partial.keys()]).toEqual([])
  expect(sim.tornAnywhere()).toEqual([])
})
