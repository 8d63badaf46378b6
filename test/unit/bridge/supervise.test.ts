// The bridge's reconnect backoff: exponential from baseMs, capped, jittered, and started over after a session that got
// established. The schedule's decisions are read directly (no clock), with jitter bounds ×[0.8, 1.2].
import { Chunk, Duration, Effect, Schedule } from "effect"
import { describe, expect, it } from "vitest"
import { retrySchedule } from "../../../src/bridge/supervise.ts"

/** The delays (ms) the schedule chooses for these inputs, in order. */
const delays = (inputs: ReadonlyArray<boolean>): ReadonlyArray<number> =>
  Effect.runSync(
    Schedule.run(Schedule.delays(retrySchedule({ baseMs: 100, capMs: 1000 })), 0, inputs).pipe(
      Effect.map((out) => Chunk.toReadonlyArray(out).map(Duration.toMillis)),
    ),
  )

const within = (ms: number, nominal: number): boolean => ms >= nominal * 0.8 - 1e-6 && ms <= nominal * 1.2 + 1e-6

describe("retrySchedule", () => {
  it("doubles from baseMs up to capMs while sessions keep failing", () => {
    const d = delays([false, false, false, false, false, false])
    expect(d).toHaveLength(6)
    ;[100, 200, 400, 800, 1000, 1000].forEach((nominal, i) => expect(within(d[i]!, nominal), `delay ${i}: ${d[i]}`).toBe(true))
  })

  it("starts over at baseMs after a session that got established", () => {
    const d = delays([false, false, false, true, false])
    ;[100, 200, 400, 100, 200].forEach((nominal, i) => expect(within(d[i]!, nominal), `delay ${i}: ${d[i]}`).toBe(true))
  })
})
