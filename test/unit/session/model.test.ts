// Model-based test of the session actor: seeded random walks (model-walk.ts, including client resumes), invariants checked after every step.
// 100,000+ steps in total; a failing seed is printed and belongs in REGRESSION_SEEDS.
import { describe, expect, it } from "vitest"
import { walk, writtenOutOfOrder } from "./model-walk.ts"

const SEEDS = Array.from({ length: 25 }, (_, k) => 1000 + k)
const STEPS = 4_200
/** Seeds that once failed, kept as regressions. */
const REGRESSION_SEEDS: number[] = []

let lostJudged = 0
let gapJudged = 0

describe("model: invariants hold over random walks", () => {
  it.each([...REGRESSION_SEEDS, ...SEEDS])("seed %i", (seed) => {
    const r = walk(seed, STEPS)
    expect(r.failures).toEqual([])
    expect(r.steps).toBe(STEPS)
    expect(r.resumes).toBeGreaterThan(0)
    lostJudged += r.lostJudged
    gapJudged += r.gapJudged
  })

  it("the walks crashed the relay with messages in consoles' sockets, and judged those messages", () => {
    expect(lostJudged).toBeGreaterThan(25)
  })

  it("the walks had the agent speak after crashes before consoles were back, and judged what those consoles got", () => {
    expect(gapJudged).toBeGreaterThan(10)
  })
})

describe("model: the whole-stream oracle judges sequences, not only single messages", () => {
  it("fails a walk whose bridge writes a resent message again (the restart defect), which passes with the dedupe", () => {
    for (const seed of [1004, 1006]) {
      expect(walk(seed, STEPS).failures).toEqual([])
      const r = walk(seed, STEPS, { bridgeDedupe: false })
      expect(r.failures.join("\n")).toMatch(/written after its message \d+: a duplicate/)
    }
  })

  it("fails walks whose consoles do not confirm: a message a crash lost in a socket never arrives", () => {
    const failures = SEEDS.slice(0, 6).flatMap((seed) => walk(seed, STEPS, { confirms: false }).failures)
    expect(failures.join("\n")).toMatch(/never got an agent message the crash lost in its socket/)
  })

  it("fails walks whose seats do not hold the stream for consoles a crash closed: what the agent said meanwhile is lost", () => {
    const failures = SEEDS.slice(0, 6).flatMap((seed) => walk(seed, STEPS, { crashedSeatsHold: false }).failures)
    expect(failures.join("\n")).toMatch(/never got what the agent said before it was back/)
  })

  it("fails walks whose resuming consoles say no lastSeq: the oracle names a message a console got twice", () => {
    const failures = SEEDS.slice(0, 6).flatMap((seed) => walk(seed, STEPS, { lastSeq: false }).failures)
    expect(failures.join("\n")).toMatch(/got an agent message \d+ times/)
  })

  it("names a duplicate and a reorder in what reached the agent, per console", () => {
    const m = (origin: string, id: number) => ({ port: 1, type: 4, payload: new Uint8Array(0), key: { origin, id } })
    const unkeyed = { port: 1, type: 6, payload: new Uint8Array(0) }
    expect(writtenOutOfOrder([m("a", 1), m("b", 1), unkeyed, m("a", 2), m("b", 3)])).toEqual([])
    expect(writtenOutOfOrder([m("a", 1), m("a", 2), m("a", 2)])).toEqual(["a message 2 written after its message 2: a duplicate"])
    expect(writtenOutOfOrder([m("a", 1), m("a", 3), m("a", 2)])).toEqual(["a message 2 written after its message 3: out of order"])
  })
})
