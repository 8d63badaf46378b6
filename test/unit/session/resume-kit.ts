// Helpers shared by the client-resume tests: a session with an agent, the welcome a link got, the agent's
// CLIENT_DISCONNECTED messages, a TimerFired at a given time.
import { MessageType } from "../../../src/protocol/constants.ts"
import type { RelayToClient } from "../../../src/link/types.ts"
import { Sim, announce } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"
import { readU32LE } from "../../../src/protocol/bytes.ts"

export const AGENT_CAPS = [SPICE_VDAGENT_CAPS]
export const GRACE = 10_000

export const ready = (o: ConstructorParameters<typeof Sim>[0] = {}): Sim => {
  const sim = new Sim(o)
  sim.attachBridge()
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
  sim.pump()
  return sim
}

export const welcome = (sim: Sim, id: string): Extract<RelayToClient, { t: "welcome" }> => {
  const w = sim.clients.get(id)!.frames.find((f) => f.t === "welcome")
  if (w?.t !== "welcome") throw new Error(`${id} has no welcome`)
  return w
}
export const disconnects = (sim: Sim) => sim.agentGot(MessageType.ClientDisconnected)
export const timer = (sim: Sim, at: number): void => {
  sim.now = at - 1 // step() adds 1
  sim.step({ _tag: "TimerFired" })
}
export const statusOf = (p: Uint8Array) => ({ id: readU32LE(p, 0), result: readU32LE(p, 4) })
