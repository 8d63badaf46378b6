// Exactly once to the guest across a raw workerd restart (kill -9, Durable Object storage kept) and a tunnel drop,
// with every real part: workerd, the bridge process, the real spice-vdagent behind the emulated chardev, SDK consoles.
// A 4 MiB file streams to the guest and the fault lands at a share of it; the file then ends byte-exact in the
// guest's folder or failed on both ends (the SDK reported it, the agent was told and removed the partial file), and
// the guest-side byte stream (every byte handed to the agent, parsed) shows each DATA once, in order, none after a
// cancel, none on another agent connection (test/harness/chaos/guest-stream.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { FAULTS } from "../harness/chaos/faults.ts"
import { type Rig, startRig } from "../harness/chaos/rig.ts"
import { runRound } from "../harness/chaos/round.ts"
import { realAgentAvailable } from "../harness/real-agent.ts"

// Outside CI a machine without the Debian packages skips; in CI startRealAgent throws and the suite fails.
const run = realAgentAvailable() || process.env.CI !== undefined
const fault = (name: string) => FAULTS.find((f) => f.name === name)!

describe.skipIf(!run)("exactly once to the guest across restarts (real agent, bridge process, workerd)", () => {
  let rig: Rig
  beforeAll(async () => {
    rig = await startRig()
  }, 120_000)
  afterAll(async () => {
    await rig?.stop()
  })

  for (const [name, share] of [["worker-restart-file", 0.25], ["worker-restart-file", 0.5], ["worker-restart-file", 0.75], ["tunnel-drop-file", 0.3], ["tunnel-drop-file", 0.7]] as const) {
    it(`${name} at ${share * 100}% of a 4 MiB file: byte-exact or failed on both ends, no DATA twice or out of order`, async () => {
      const r = await runRound(rig, fault(name), share, 4 * 1024 * 1024)
      expect(r.problems).toEqual([])
      expect(["whole", "reported"]).toContain(r.outcome)
      expect(r.survived).toBe(true)
    }, 250_000)
  }
})
