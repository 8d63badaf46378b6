// Lifecycle faults on the real VM, many seeded rounds (issue 11 item 3; docs/reliability.md "Real-VM lifecycle faults"):
// the real spice-vdagent in a real QEMU guest, the bridge process behind a tap on the agent chardev, a cuttable tunnel,
// workerd and the SDK (test/vm/stack-vm.ts). Each round picks a fault and a direction (a file to the guest, or a large
// guest clipboard to the console), injects the fault when a seeded share of the message crossed the chardev, then
// judges it whole / reported / torn / stale / duplicated and ends with a clipboard round trip both ways.
//   npm run chaos:vm -- --rounds 50 [--seed 1] [--bytes 1048576] [--faults system-reset,qemu-kill] [--json FILE] [--minutes M]
// --rounds is per fault and direction. --minutes stops starting rounds once that much time has passed (the plan is
// seeded and shuffled, so a stopped run is a fair sample of it). The JSON file is rewritten after every round, so an
// interrupted run keeps what it judged. Exit 1 when any round was torn, stale, duplicated or unrecovered.
import { execFileSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { parseArgs } from "node:util"
import { CI_FAULTS, type Direction, FAULTS, type FaultName, type RoundResult, VM_FAULTS, describeRound, needsRepair, startVmStack, tally } from "../test/vm/stack-vm.ts"
import { Rng } from "../test/harness/fuzz/rng.ts"

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "1" },
    seed: { type: "string", default: "1" },
    bytes: { type: "string", default: String(1024 * 1024) },
    faults: { type: "string" },
    directions: { type: "string", default: "file-to-guest,clipboard-to-console" },
    json: { type: "string" },
    minutes: { type: "string" },
    list: { type: "boolean", default: false },
  },
})
const ALL: ReadonlyArray<FaultName> = [...CI_FAULTS, ...VM_FAULTS]
if (values.list) {
  for (const f of ALL) console.log(`${f.padEnd(20)} ${FAULTS[f].what}${(CI_FAULTS as ReadonlyArray<string>).includes(f) ? " (also in test/vm/lifecycle.test.ts)" : ""}`)
  process.exit(0)
}
const chosen = values.faults === undefined ? ALL : ALL.filter((f) => values.faults!.split(",").includes(f))
const unknown = values.faults?.split(",").filter((f) => !(ALL as ReadonlyArray<string>).includes(f)) ?? []
if (unknown.length > 0) {
  console.error(`unknown fault(s) ${unknown.join(", ")}; --list shows them`)
  process.exit(2)
}
const directions = values.directions.split(",") as Direction[]
const rounds = Number(values.rounds)
const bytes = Number(values.bytes)
const seed = Number(values.seed)
const rng = new Rng(seed)

// Every (fault, direction) `rounds` times, in a seeded order, each with a seeded share (20-80 %) of the message.
const plan: Array<{ fault: FaultName; direction: Direction; share: number }> = []
for (let i = 0; i < rounds; i++) for (const fault of chosen) for (const direction of directions) plan.push({ fault, direction, share: 0.2 + rng.int(61) / 100 })
for (let i = plan.length - 1; i > 0; i--) {
  const j = rng.int(i + 1)
  ;[plan[i], plan[j]] = [plan[j]!, plan[i]!]
}

/** The longest a round may take (a VM fault: poweroff, a 180 s boot, 120 s for the console, a failing round trip). */
const ROUND_MS = 15 * 60_000
const started = Date.now()
const budgetMs = values.minutes === undefined ? Infinity : Number(values.minutes) * 60_000
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ")
const commit = ((): string => {
  try {
    // Others' uncommitted edits in the tree make the commit alone an incomplete name of what ran: say so.
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", "src", "workers", "test", "scripts"], { encoding: "utf8" }).trimEnd()
    return dirty === "" ? head : `${head}+uncommitted(${dirty.split("\n").map((l) => l.slice(3)).join(",")})`
  } catch {
    return "unknown"
  }
})()
const loadAtStart = load()
console.log(`[chaos-vm] commit ${commit}, seed ${seed}, ${plan.length} rounds (${rounds} × ${chosen.length} faults × ${directions.length} directions), ${bytes} B per message, load ${loadAtStart}`)
const s = await startVmStack({ log: (l) => console.log(l) })
const results: RoundResult[] = []
const errors: string[] = []
let stoppedEarly: string | undefined
const save = (): void => {
  if (values.json === undefined) return
  const meta = { commit, seed, bytes, planned: plan.length, loadAtStart, loadNow: load(), minutes: (Date.now() - started) / 60_000, vmBootMs: s.vm.bootMs, accel: s.vm.accel, stoppedEarly }
  writeFileSync(values.json, JSON.stringify({ ...meta, results, errors }, null, 2))
}
// Stopped from outside (Ctrl-C, timeout): keep what was judged; the exit handlers of the harness kill QEMU and the rest.
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    stoppedEarly = `${sig} after ${results.length} of ${plan.length} rounds`
    save()
    process.exit(130)
  })
try {
  console.log(`[chaos-vm] baseline round trip: ${JSON.stringify(await s.roundTrip("baseline"))}`)
  for (const [i, p] of plan.entries()) {
    if (Date.now() - started > budgetMs) {
      stoppedEarly = `time budget of ${values.minutes} min reached after ${i} of ${plan.length} rounds`
      console.log(`[chaos-vm] ${stoppedEarly}`)
      break
    }
    try {
      // A round that hangs (a step with no bound of its own) is an error after ROUND_MS, not the end of the run.
      const round = p.direction === "file-to-guest" ? s.fileRound(p.fault, bytes, p.share) : s.clipboardRound(p.fault, bytes, p.share)
      let timer: NodeJS.Timeout | undefined
      const r = await Promise.race([round, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the round did not end within ${ROUND_MS / 60_000} min`)), ROUND_MS)))]).finally(() => clearTimeout(timer))
      results.push(r)
      console.log(`#${i + 1}/${plan.length} share ${Math.round(p.share * 100)}% ${describeRound(r)}`)
      // Each round judges its own fault: a clipboard left broken is repaired with a new console.
      if (needsRepair(r)) await s.reconnectConsole()
      save()
    } catch (e) {
      // A round that could not finish is an error (it fails the run); the run ends unless the stack comes back.
      errors.push(`#${i + 1} ${p.fault} ${p.direction}: ${(e as Error).message}`)
      console.log(`#${i + 1}/${plan.length} ${p.fault} ${p.direction}: ERROR ${(e as Error).message}`)
      // What each part was doing when the stack did not come back.
      console.log(`  QEMU running ${s.vm.running}; console ${s.session.state}, agent ${JSON.stringify({ connected: s.session.agent.connected, caps: s.session.agent.caps !== null })}; tap refused ${s.tap.refused}`)
      for (const line of s.tap.summary(Math.max(0, s.tap.connections.length - 4))) console.log(`  tap ${line}`)
      for (const line of s.bridge.log.lines.slice(-40)) console.log(`  bridge ${line.slice(0, 400)}`)
      save()
      // One stuck step (a guest command unanswered under load) must not end an hour's run: if the stack comes back by
      // itself (the console sees the agent and a round trip passes), go on; the error stays counted and fails the run.
      const recover = (): Promise<string[]> =>
        s
          .ready(180_000)
          .then(() => s.reconnectConsole())
          .then(() => s.roundTrip(`after error #${i + 1}`))
          .catch((err: Error) => [err.message])
      let back = await recover()
      // A guest that powered off and left QEMU up (seen under load: SHUTDOWN sent, "reboot: Power down" printed, QEMU
      // never exits) does not come back by itself: the VM is killed and booted again, and the run goes on.
      if (back.length > 0) {
        console.log(`  the stack did not come back (${back.join("; ")}): QEMU killed and started again`)
        back = await s.vm
          .kill()
          .then(() => s.vm.restart())
          .then(recover)
          .catch((err: Error) => [err.message])
      }
      if (back.length > 0) {
        console.log(`  the stack did not come back: ${back.join("; ")}`)
        break
      }
      console.log(`  the stack came back (console sees the agent, round trip passed): the run goes on`)
    }
  }
} finally {
  await s.stop()
}
console.log(`\n[chaos-vm] commit ${commit}, seed ${seed}: ${results.length} rounds in ${((Date.now() - started) / 60_000).toFixed(1)} min, VM boot ${(s.vm.bootMs / 1000).toFixed(1)} s (${s.vm.accel}), load at start ${loadAtStart}, now ${load()}`)
for (const line of tally(results)) console.log(`  ${line}`)
for (const e of errors) console.log(`  ERROR ${e}`)
const bad = results.filter((r) => r.outcome !== "whole" && r.outcome !== "reported")
const late = results.filter((r) => !r.midway).length
if (late > 0) console.log(`  ${late} round(s) where the fault landed after the message had arrived`)
save()
process.exit(bad.length > 0 || errors.length > 0 ? 1 : 0)
