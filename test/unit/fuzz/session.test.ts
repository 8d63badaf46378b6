// Seeded, bounded fuzzing of the session actor from each side (the CI subset of `npm run fuzz`), and proof that the
// oracles can fail: the same programs run against injected relay bugs must be caught.
import { describe, expect, it } from "vitest"
import { runFuzz, type FuzzReport } from "../../harness/fuzz/engine.ts"
import { AGENT_OPS, CLIENT_OPS, makeSessionTarget, sessionAgentTarget, sessionBridgeTarget, sessionClientTarget } from "../../harness/fuzz/targets/session.ts"
import type { Mutant } from "../../harness/fuzz/session/world.ts"

const summary = (r: FuzzReport): string => r.findings.map((f) => `${f.kind} at ${f.index}: ${f.message}\ninput ${Buffer.from(f.input).toString("hex")}`).join("\n\n")

describe("session actor fuzzing (seeded subset)", () => {
  for (const target of [sessionAgentTarget, sessionClientTarget, sessionBridgeTarget]) {
    it(`${target.name}: 3000 programs, no crash, every oracle holds`, async () => {
      const r = await runFuzz(target, { inputs: 3000, seed: 20261126 })
      expect(summary(r)).toBe("")
      expect(r.crashes + r.oracleFailures).toBe(0)
      expect(r.features).toBeGreaterThan(100)
    })
  }
})

describe("the session oracles catch injected relay bugs", () => {
  const mutants: ReadonlyArray<readonly [Mutant, string]> = [
    ["drop-ack", "a message written to the agent is never acknowledged to its sender"],
    ["drop-more", "a fragment of an agent message is lost on the way to a console"],
    ["drop-notice", "a refused message is not reported to its sender"],
    ["split-write", "a guest-bound message is cut in two"],
    ["drop-abort", "a console is not told that a message it half received will never end"],
  ]
  for (const [mutant, what] of mutants) {
    it(`${mutant}: ${what}`, async () => {
      const target = makeSessionTarget(`mutant-${mutant}`, what, [...AGENT_OPS, ...CLIENT_OPS], mutant)
      const r = await runFuzz(target, { inputs: 1500, seed: 1 })
      expect(r.crashes).toBe(0)
      expect(r.oracleFailures).toBeGreaterThan(0)
    })
  }
})
