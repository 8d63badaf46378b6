// Model-based test of the session actor: seeded random walks (model-walk.ts, including client resumes), invariants checked after every step.
// 100,000+ steps in total; a failing seed is printed and belongs in REGRESSION_SEEDS.
import { describe, expect, it } from "vitest"
import { walk } from "./model-walk.ts"

const SEEDS = Array.from({ length: 25 }, (_, k) => 1000 + k)
const STEPS = 4_200
/** Seeds that once failed, kept as regressions. */
const REGRESSION_SEEDS: number[] = []

describe("model: invariants hold over random walks", () => {
  it.each([...REGRESSION_SEEDS, ...SEEDS])("seed %i", (seed) => {
    const r = walk(seed, STEPS)
    expect(r.failures).toEqual([])
    expect(r.steps).toBe(STEPS)
    expect(r.resumes).toBeGreaterThan(0)
  })
})
