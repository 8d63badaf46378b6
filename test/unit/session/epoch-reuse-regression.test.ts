// Regression (found by `npm run fuzz -- --target session-bridge`): a new agent connection whose epoch number a console
// had seen before (a bridge restarted within the same second, or a clock stepped back) had its messages skipped for that
// console as "replays" of the old connection, silently, until positions passed the old ones.
import { expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import { Sim, announce, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

it("delivers every message of a new connection even when its epoch number was used before", () => {
  const sim = new Sim()
  sim.attachBridge({ epoch: 7 })
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [SPICE_VDAGENT_CAPS]))
  const c = sim.join("c1")
  sim.credit("c1", 1 << 30)
  for (let i = 0; i < 8; i++) sim.agentSays(MessageType.Reply, u32le(i, 1))
  sim.pump()
  expect(c.messages.filter((m) => m.type === MessageType.Reply)).toHaveLength(8)
  sim.chardev(true, 6) // another connection
  sim.chardev(true, 7) // and another, reusing an epoch number this console has positions of
  sim.agentSays(MessageType.Reply, u32le(100, 1))
  sim.pump()
  sim.credit("c1", 1 << 30)
  expect(c.messages.filter((m) => m.type === MessageType.Reply).map((m) => m.payload[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 100])
  expect(sim.tornAnywhere()).toEqual([])
})

it("a message of the old connection still queued when a new one starts does not hide the new one's messages", () => {
  const sim = new Sim({ limits: { initialClientCredit: 1 } })
  sim.attachBridge({ epoch: 1 })
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [SPICE_VDAGENT_CAPS]))
  sim.pump()
  const c = sim.join("c1")
  sim.agentSays(MessageType.Reply, new Uint8Array(8).fill(1))
  sim.agentSays(MessageType.DisplayConfig, new Uint8Array(8)) // a second one waits for credit
  sim.pump()
  sim.chardev(true, 2) // a new connection, while the old one's last message is still queued for the console
  sim.credit("c1", 1 << 20) // the old message goes out now, whole
  sim.agentSays(MessageType.Reply, u32le(7, 1))
  sim.pump()
  sim.credit("c1", 1 << 20)
  expect(c.messages.filter((m) => m.type === MessageType.Reply).map((m) => m.payload[0])).toEqual([1, 7])
  expect(sim.tornAnywhere()).toEqual([])
})
