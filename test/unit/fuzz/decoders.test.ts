// Seeded, bounded fuzzing of every decoder (the CI subset of `npm run fuzz`, docs/reliability.md): each target runs a
// fixed number of generated and mutated inputs and must end with no crash and no broken oracle.
import { describe, expect, it } from "vitest"
import { runFuzz, type FuzzReport, type FuzzTarget } from "../../harness/fuzz/engine.ts"
import { bridgeLinkTarget, clientLinkTarget } from "../../harness/fuzz/targets/link.ts"
import { bridgeGuestTarget, clientInboxTarget } from "../../harness/fuzz/targets/peers.ts"
import { payloadTarget } from "../../harness/fuzz/targets/protocol-payload.ts"
import { streamTarget } from "../../harness/fuzz/targets/protocol-stream.ts"
import { tokenTarget } from "../../harness/fuzz/targets/token.ts"

const summary = (r: FuzzReport): string => r.findings.map((f) => `${f.kind} at ${f.index}: ${f.message}\ninput ${Buffer.from(f.input).toString("hex")}`).join("\n\n")

const cases: ReadonlyArray<readonly [FuzzTarget, number]> = [
  [streamTarget, 20_000],
  [payloadTarget, 40_000],
  [clientLinkTarget, 15_000],
  [bridgeLinkTarget, 15_000],
  [tokenTarget, 10_000],
  [bridgeGuestTarget, 10_000],
  [clientInboxTarget, 10_000],
]

describe("decoder fuzzing (seeded subset; the peers' whole-message checks included)", () => {
  for (const [target, inputs] of cases) {
    it(`${target.name}: ${inputs} inputs, no crash, every oracle holds`, async () => {
      const r = await runFuzz(target, { inputs, seed: 20261126 })
      expect(r.inputs).toBe(inputs)
      expect(summary(r)).toBe("")
      expect(r.crashes + r.oracleFailures).toBe(0)
      // The corpus grew beyond the seeds: the generators and mutators reach outcomes the seeds do not.
      expect(r.features).toBeGreaterThan(20)
      // A decoder that allocated what a bomb declares (up to 4 GiB) would blow far past this.
      expect(r.peakHeapBytes).toBeLessThan(1024 * 1024 * 1024)
    })
  }
})
