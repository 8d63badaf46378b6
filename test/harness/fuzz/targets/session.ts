// Fuzz targets "session-agent", "session-client", "session-bridge": the session actor (src/session) driven by programs
// of valid and hostile events from each side (ops.ts), every command checked as it leaves (world.ts), then settled,
// content-checked and probed for liveness (settle.ts). One op set; each target favours its side's hostile ops.
import type { Limits } from "../../../../src/session/index.ts"
import { check, type FuzzTarget } from "../engine.ts"
import { Provider } from "../provider.ts"
import type { Rng } from "../rng.ts"
import { OP_COUNT, Op, runOp, writeProgram } from "../session/ops.ts"
import { checkContent, liveInEpoch, probe, settle } from "../session/settle.ts"
import { type Mutant, SessionWorld } from "../session/world.ts"

/** Small caps make queues, windows and credit run out within a short program. */
const SMALL: Partial<Limits> = {
  agentWindow: 8192,
  clientQueueBytes: 6144,
  clientCredit: 4096,
  initialClientCredit: 2048,
  storeAndForwardBytes: 2048,
  clientFragmentBytes: 512,
  bridgeWriteBytes: 2 * 2056,
  guestWindow: 8192,
  agentMaxMessage: 1024 * 1024,
  bridgeGraceMs: 1000,
}

const MAX_OPS = 96

const weights = (favour: ReadonlyArray<number>): number[] => Array.from({ length: OP_COUNT }, (_, op) => (favour.includes(op) ? 6 : 1))

export const makeSessionTarget = (name: string, what: string, favour: ReadonlyArray<number>, mutant?: Mutant): FuzzTarget => {
  const w = weights(favour)
  return {
    name,
    description: `session actor, ${what}: whole messages only, every drop answered, bounded memory, never wedged`,
    maxInputBytes: 8 * 1024,
    covers: ["src/session/"],
    seeds: () => [],
    generate: (r: Rng) => Uint8Array.of(r.int(4), ...writeProgram(r, w, r.range(4, 40))),
    run: (input, f) => {
      const p = new Provider(input)
      const cfg = p.u8()
      const world = new SessionWorld(f, { ...((cfg & 1) === 0 ? { limits: SMALL } : {}), ...(mutant !== undefined ? { mutant } : {}) })
      f.add(`cfg:${cfg & 1}`)
      for (let i = 0; i < MAX_OPS && !p.done; i++) runOp(world, p)
      settle(world)
      checkContent(world)
      liveInEpoch(world)
      probe(world)
      f.count("steps", world.steps)
      check(world.steps < 1_000_000, "runaway")
    },
  }
}

export const AGENT_OPS = [Op.AgentMsg, Op.AgentGarbage, Op.AgentPartial, Op.Announce, Op.Chardev, Op.Port, Op.Credit]
export const CLIENT_OPS = [Op.Join, Op.Leave, Op.ClientMsg, Op.ClientMore, Op.ClientAbort, Op.ClientRaw, Op.ClientReject, Op.Credit, Op.Control, Op.Wrote]
export const BRIDGE_OPS = [Op.Hello, Op.Drop, Op.DataBogus, Op.Chardev, Op.Port, Op.Wrote, Op.BridgeRaw, Op.BridgeReject, Op.Timer, Op.Evict, Op.AgentMsg, Op.ClientMsg]

export const sessionAgentTarget = makeSessionTarget("session-agent", "hostile agent bytes", AGENT_OPS)
export const sessionClientTarget = makeSessionTarget("session-client", "hostile console frames", CLIENT_OPS)
export const sessionBridgeTarget = makeSessionTarget("session-bridge", "hostile bridge frames and platform events", BRIDGE_OPS)
