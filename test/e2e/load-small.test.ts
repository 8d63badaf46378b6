// The CI-sized load run (docs/reliability.md; the full runs are `npm run load`): 50 VMs on one local workerd, each with
// an in-process bridge + agent simulator and an SDK console, clipboard both ways and pointer moves for two rounds, then
// idle. Every exchange must arrive whole, nothing may be lost, idle sessions must cost no CPU, and they must still work.
import { expect, it } from "vitest"
import { runLoad } from "../harness/load/run.ts"

it("50 sessions: no lost or torn message, no CPU while idle, working after idle, memory per session within budget", async () => {
  const r = await runLoad({ sessions: 50, rounds: 2, idleSeconds: 5, concurrency: 25 })
  expect(r.problems).toEqual([])
  // Three exchanges per round: two load rounds and the round after idle.
  expect(r.exchanges).toEqual({ ok: 50 * 3 * 3, lost: 0, torn: 0 })
  expect(r.afterIdle).toEqual({ ok: 50 * 3, lost: 0, torn: 0 })
  expect(r.bridgeFaults).toEqual({ badFrames: 0, outOfPosition: 0, agentErrors: 0 })
  // An idle session has no timer, alarm or heartbeat: workerd should not run at all (a poll loop would show here).
  expect(r.workerd.idleCpuPercent).toBeLessThan(2)
  // DESIGN.md: a per-session budget of a few MiB; workerd's fixed cost is spread over only 50 sessions here.
  expect(r.workerd.perSessionBytes).toBeLessThan(4 * 1024 * 1024)
}, 120_000)
