// Live migrations of the real VM, many seeded rounds (issue 13; docs/migration.md): two hosts (a bridge process each),
// workerd and one SDK console (test/vm/migration-bed.ts). Each round puts transfers in flight both ways (a guest PRIMARY
// clipboard to the console, a console clipboard pasted in the guest, a file into the guest, a mouse stream), migrates
// the VM to the other host (or runs a failure variant) and judges the round on the whole (test/vm/migration-round.ts).
//   npm run chaos:migrate -- [--rounds 20] [--failures 2] [--seed 1] [--max-bytes 2097152] [--json FILE] [--minutes M]
// --rounds completed migrations, plus --failures of each failure variant (migrate_cancel, destination QEMU killed
// mid-migration, destination bridge down until after RESUME), in a seeded order. Prints counts of lost / torn /
// duplicated / console reconnects and the agent-unavailable gap consoles saw (median, max). Exit 1 when any completed or
// failed-over round lost, tore or duplicated anything, or a console reconnected.
import { writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { parseArgs } from "node:util"
import { Rng } from "../test/harness/fuzz/rng.ts"
import { startMigrationBed, type Variant } from "../test/vm/migration-bed.ts"
import { migrationRound, type RoundResult } from "../test/vm/migration-round.ts"

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "20" },
    failures: { type: "string", default: "2" },
    seed: { type: "string", default: "1" },
    "max-bytes": { type: "string", default: String(2 * 1024 * 1024) },
    json: { type: "string" },
    minutes: { type: "string" },
  },
})
const seed = Number(values.seed)
const rng = new Rng(seed)
const maxBytes = Number(values["max-bytes"])
const plan: Variant[] = []
for (let i = 0; i < Number(values.rounds); i++) plan.push("complete")
for (let i = 0; i < Number(values.failures); i++) plan.push("cancel", "kill-destination", "destination-bridge-down")
for (let i = plan.length - 1; i > 0; i--) {
  const j = rng.int(i + 1)
  ;[plan[i], plan[j]] = [plan[j]!, plan[i]!]
}
const size = (): number => Math.max(4096, Math.round(((1 + rng.int(8)) / 8) * maxBytes))
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ")
const started = Date.now()
const budgetMs = values.minutes === undefined ? Infinity : Number(values.minutes) * 60_000
const loadAtStart = load()
console.log(`[chaos-migrate] seed ${seed}, ${plan.length} rounds (${plan.filter((v) => v === "complete").length} migrations + failure variants), up to ${maxBytes} B per transfer, load ${loadAtStart}`)
const bed = await startMigrationBed({ log: (l) => console.log(l) })
const results: RoundResult[] = []
const errors: string[] = []
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const summary = () => {
  const by = (v: Variant) => results.filter((r) => r.variant === v)
  const count = (rs: RoundResult[], k: "lost" | "torn" | "duplicated") => rs.reduce((n, r) => n + r[k].length, 0)
  const done = by("complete")
  const gaps = results.map((r) => r.agentGapMs)
  const switches = done.flatMap((r) => (r.migration.switchMs === undefined ? [] : [r.migration.switchMs]))
  const downtimes = results.flatMap((r) => (r.migration.downtimeMs === undefined ? [] : [r.migration.downtimeMs]))
  return {
    rounds: results.length,
    byVariant: Object.fromEntries((["complete", "cancel", "kill-destination", "destination-bridge-down"] as const).map((v) => [v, { rounds: by(v).length, statuses: by(v).map((r) => r.migration.status), lost: count(by(v), "lost"), torn: count(by(v), "torn"), duplicated: count(by(v), "duplicated"), reconnects: by(v).reduce((n, r) => n + r.reconnects, 0), roundTripFailed: by(v).filter((r) => r.roundTrip.length > 0).length }])),
    /** Completed migrations in which the guest was still writing its clipboard at the switch (both bridges read part). */
    crossedSwitch: done.filter((r) => r.split.source > 0 && r.split.destination > 0).length,
    agentGapMs: { median: median(gaps), max: Math.max(0, ...gaps) },
    switchMs: { median: median(switches), max: Math.max(0, ...switches) },
    downtimeMs: { median: median(downtimes), max: Math.max(0, ...downtimes) },
    errors: errors.length,
  }
}
const save = (): void => {
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ seed, maxBytes, loadAtStart, loadNow: load(), minutes: (Date.now() - started) / 60_000, summary: summary(), results, errors }, null, 2))
}
try {
  for (const [i, variant] of plan.entries()) {
    if (Date.now() - started > budgetMs) {
      console.log(`[chaos-migrate] stopping: ${values.minutes} minutes used, ${i} of ${plan.length} rounds run`)
      break
    }
    const sizes = { toConsole: size(), toGuest: size(), file: size() }
    try {
      const r = await migrationRound(bed, i + 1, variant, sizes)
      results.push(r)
      const bad = [...r.lost.map((x) => `lost: ${x}`), ...r.torn.map((x) => `torn: ${x}`), ...r.duplicated.map((x) => `duplicated: ${x}`), ...r.roundTrip.map((x) => `round trip: ${x}`)]
      console.log(`[chaos-migrate] round ${i + 1}/${plan.length} ${variant} → ${r.migration.status} on ${r.migration.on}: ${bad.length === 0 ? "clean" : "FINDINGS"}; reconnects ${r.reconnects}, agent gap ${r.agentGapMs} ms, switch ${r.migration.switchMs ?? "-"} ms, downtime ${r.migration.downtimeMs ?? "-"} ms, ${(r.ms / 1000).toFixed(1)} s, load ${load()}`)
      for (const b of [...bad, ...r.notes]) console.log(`    ${b}`)
    } catch (e) {
      errors.push(`round ${i + 1} ${variant}: ${e instanceof Error ? e.message : String(e)}`)
      console.log(`[chaos-migrate] round ${i + 1} ${variant}: ERROR ${errors.at(-1)}`)
      for (const l of bed.story().slice(-30)) console.log(`    ${l}`)
      break
    }
    save()
  }
} finally {
  save()
  await bed.stop()
}
const sum = summary()
console.log(`[chaos-migrate] ${JSON.stringify(sum, null, 2)}`)
console.log(`[chaos-migrate] load at start ${loadAtStart}, at end ${load()}, ${((Date.now() - started) / 60_000).toFixed(1)} min`)
const dirty = results.some((r) => r.lost.length + r.torn.length + r.duplicated.length + r.reconnects > 0 || (r.variant !== "destination-bridge-down" && r.roundTrip.length > 0))
process.exit(dirty || errors.length > 0 ? 1 : 0)
