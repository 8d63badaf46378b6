// Chaos against the real processes, CI-sized (the long runs are `npm run chaos -- --rounds N`, docs/reliability.md):
// every fault of the catalogue once, each landing inside a 2 MiB message, in a seeded random order; after each, the
// message arrived whole or its loss was reported, the chain recovers (clipboard both ways, a small file) and the real
// agent never lost sync.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { FAULTS } from "../harness/chaos/faults.ts"
import { type Rig, startRig } from "../harness/chaos/rig.ts"
import { runRound, type RoundResult } from "../harness/chaos/round.ts"
import { Rng } from "../harness/fuzz/rng.ts"
import { realAgentAvailable } from "../harness/real-agent.ts"

// Outside CI a machine without the Debian packages skips; in CI startRealAgent throws and the suite fails.
const run = realAgentAvailable() || process.env.CI !== undefined

/**
 * Faults with an open, intermittent failure (docs/reliability.md, "Open issues"): run by `npm run chaos`, kept out of CI
 * until their cause is found, so that a red CI always means a regression. (daemon-restart-down left this list once its
 * cause was found: stale bytes held for the next opener, docs/reliability.md §2.)
 */
const KNOWN_INTERMITTENT = new Set<string>([])

describe.skipIf(!run)("chaos: every fault once against the real agent, bridge process and workerd", () => {
  let rig: Rig
  const results: RoundResult[] = []
  beforeAll(async () => {
    rig = await startRig()
  })
  afterAll(async () => {
    await rig?.stop()
  })

  const rng = new Rng(20261126)
  for (const fault of FAULTS.filter((f) => !KNOWN_INTERMITTENT.has(f.name))) {
    const share = 0.1 + rng.int(80) / 100
    it(`${fault.name}: ${fault.what}`, async () => {
      const r = await runRound(rig, fault, share, 2 * 1024 * 1024)
      results.push(r)
      expect(r.problems).toEqual([])
      expect(["whole", "delivered", "reported", "none"]).toContain(r.outcome)
      expect(r.survived).toBe(true)
    }, 250_000)
  }
})
