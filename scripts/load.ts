// Load and soak on loopback (docs/reliability.md): many VMs on one local workerd, each with an in-process bridge +
// agent simulator and an SDK console, exchanging clipboard both ways and pointer moves.
//   node --import tsx scripts/load.ts --sessions 1000 --rounds 3          # load
//   node --import tsx scripts/load.ts --sessions 200 --soak 600           # soak: 10 minutes of steady load
// Exits 1 when any exchange was lost or torn, or a bridge saw a bad frame.
import { writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { parseArgs } from "node:util"
import { runLoad } from "../test/harness/load/run.ts"

process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false"
process.env.WRANGLER_SEND_METRICS = "false"
process.env.DO_NOT_TRACK = "1"

const { values } = parseArgs({
  options: {
    sessions: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    soak: { type: "string" },
    "text-bytes": { type: "string", default: "1024" },
    concurrency: { type: "string", default: "32" },
    idle: { type: "string", default: "10" },
    json: { type: "string" },
  },
})

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`
const r = await runLoad({
  sessions: Number(values.sessions),
  rounds: Number(values.rounds),
  textBytes: Number(values["text-bytes"]),
  concurrency: Number(values.concurrency),
  idleSeconds: Number(values.idle),
  ...(values.soak !== undefined ? { soakSeconds: Number(values.soak) } : {}),
  log: (l) => console.log(`  ${l}`),
})
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${mib(totalmem())}`)
console.log(`sessions ${r.sessions}: exchanges ok ${r.exchanges.ok}, lost ${r.exchanges.lost}, torn ${r.exchanges.torn}; after idle ok ${r.afterIdle.ok}, lost ${r.afterIdle.lost}, torn ${r.afterIdle.torn}`)
console.log(`bridge faults: bad frames ${r.bridgeFaults.badFrames}, out of position ${r.bridgeFaults.outOfPosition}, agent parse errors ${r.bridgeFaults.agentErrors}`)
const w = r.workerd
console.log(`workerd RSS: base ${mib(w.baseRssBytes)}, connected ${mib(w.connectedRssBytes)} (${(w.perSessionBytes / 1024).toFixed(1)} KiB/session), busy ${mib(w.busyRssBytes)}, idle ${mib(w.idleRssBytes)}`)
console.log(`workerd CPU: ${w.busyCpuPercent.toFixed(1)} % busy, ${w.idleCpuPercent.toFixed(2)} % idle (of one core)`)
if (r.soak !== undefined)
  console.log(
    `soak ${r.soak.seconds} s: ${r.soak.exchanges} exchanges, workerd RSS median ${r.soak.firstThirdMiB.toFixed(1)} MiB (first third) → ` +
      `${r.soak.lastThirdMiB.toFixed(1)} MiB (last third), least-squares trend ${r.soak.slopeMiBPerHour.toFixed(1)} MiB/h over ${r.soak.samples.length} samples`,
  )
for (const p of r.problems) console.log(`  problem: ${p}`)
console.log(`took ${r.seconds.toFixed(0)} s`)
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(r, null, 2))
const bad = r.exchanges.lost + r.exchanges.torn + r.bridgeFaults.badFrames + r.bridgeFaults.outOfPosition + r.bridgeFaults.agentErrors
process.exit(bad === 0 ? 0 : 1)
