// Regression (found by `npm run fuzz -- --target session-client`): the relay asked the agent for its caps (ANNOUNCE on
// the client port) while a console's large message was half written on that port; the agent, which reassembles per
// port, would have taken the two as one torn message. The half-written message is now given up and its sender told.
import { expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { Sim } from "./sim.ts"

it("never interleaves the relay's caps request with a console's message half written on the client port", () => {
  const sim = new Sim()
  sim.attachBridge({ epoch: 3, port: "unknown" })
  const c = sim.join("c1")
  const big = new Uint8Array(8 + 200 * 1024).fill(7) // CLIPBOARD above the store-and-forward size: streamed
  big.set([0, 0, 0, 0, 1, 0, 0, 0])
  const id = sim.send("c1", MessageType.Clipboard, big, { frag: 16 * 1024, stopAfter: 2 })
  sim.port(true) // unknown → open with no caps yet: the relay asks
  expect(sim.tornAnywhere()).toEqual([])
  expect(c.sent.get(id)?.fate).toEqual(["resend"])
  sim.wrote()
  expect(sim.agentGot(MessageType.AnnounceCapabilities).length).toBeGreaterThan(0)
  expect(sim.agentGot(MessageType.Clipboard)).toEqual([])
})
