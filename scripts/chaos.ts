// Chaos against the real processes (docs/reliability.md): the Worker in workerd, the bridge process, the real Debian
// spice-vdagent, SDK consoles. Each round injects one fault from the catalogue at a random point of a large message and
// checks it arrived whole or was reported, that the chain recovers, and that the agent never lost sync.
//   npm run chaos -- --rounds 50 [--seed 1] [--bytes 4194304] [--faults tunnel-drop-up,worker-restart] [--json FILE]
import { appendFileSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { FAULTS, NOT_INJECTED, type Fault } from "../test/harness/chaos/faults.ts"
import { startRig } from "../test/harness/chaos/rig.ts"
import { repair, runRound, type RoundResult } from "../test/harness/chaos/round.ts"
import { Rng } from "../test/harness/fuzz/rng.ts"

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: String(FAULTS.length) },
    seed: { type: "string", default: "1" },
    bytes: { type: "string" },
    faults: { type: "string" },
    json: { type: "string" },
    list: { type: "boolean", default: false },
  },
})
if (values.list) {
  for (const f of FAULTS) console.log(`${f.name.padEnd(26)} ${f.what}`)
  console.log(`not injected: ${NOT_INJECTED.join(", ")} (test/workers covers it with evictDurableObject)`)
  process.exit(0)
}
const chosen = values.faults === undefined ? FAULTS : FAULTS.filter((f) => values.faults!.split(",").includes(f.name))
const rng = new Rng(Number(values.seed))
const shuffle = <A>(items: ReadonlyArray<A>): A[] => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
let order: Fault[] = []
const rig = await startRig()
const results: RoundResult[] = []
try {
  for (let i = 0; i < Number(values.rounds); i++) {
    // Every fault once per pass over the catalogue, each pass in a new random order.
    if (i % chosen.length === 0) order = shuffle(chosen)
    const fault = order[i % chosen.length]!
    const share = 0.05 + rng.int(90) / 100
    const bytes = values.bytes !== undefined ? Number(values.bytes) : 512 * 1024 + rng.int(7 * 1024 * 1024)
    const r = await runRound(rig, fault, share, bytes)
    results.push(r)
    console.log(`round ${i + 1}: ${r.fault} at ${(r.at * 100).toFixed(0)}% of ${(bytes / 2 ** 20).toFixed(1)} MiB → ${r.outcome}, ${r.survived ? "survived" : "FAILED"} (${(r.ms / 1000).toFixed(1)} s)`)
    for (const p of r.problems) console.log(`    ${p}`)
    if (!r.survived) console.log(`    repair (chardev reconnect): ${(await repair(rig)) ? "the chain works again" : "FAILED, later rounds will fail too"}`)
    // VDRELAY_CHAOS_LOG=file collects the logs of every part during each failed round, for the post-mortem.
    if (r.logs !== undefined && process.env.VDRELAY_CHAOS_LOG !== undefined)
      appendFileSync(process.env.VDRELAY_CHAOS_LOG, `=== round ${i + 1}: ${r.fault}\n${r.problems.join("\n")}\n${r.logs}\n`)
  }
} finally {
  await rig.stop()
}
const survived = results.filter((r) => r.survived).length
console.log(`faults survived: ${survived}/${results.length}`)
const byFault = new Map<string, { n: number; ok: number }>()
for (const r of results) {
  const e = byFault.get(r.fault) ?? { n: 0, ok: 0 }
  e.n++
  if (r.survived) e.ok++
  byFault.set(r.fault, e)
}
for (const [f, e] of byFault) console.log(`  ${f.padEnd(26)} ${e.ok}/${e.n}`)
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ survived, rounds: results.length, results: results.map(({ logs, ...r }) => r) }, null, 2))
process.exit(survived === results.length ? 0 : 1)
