// Runs every bench/*.bench.ts module and prints one JSON line per figure it emits.
//   npm run bench                          every suite (~10 min)
//   npm run bench e2e                      the suites whose file name contains "e2e"
//   npm run bench -- --only idle,baseline-relay:mouse
//                                          whole suites by name, or one section of a suite (suite:section; the sections
//                                          a suite has are listed in docs/benchmarks.md), to re-run single figures
// The load average at the start and at the end goes to stderr and into a last JSON line: absolute figures on a shared
// machine mean little without it (ratios are taken in the same run).
import { readdirSync } from "node:fs"
import { loadavg } from "node:os"
import { basename, join } from "node:path"
import { pathToFileURL } from "node:url"

export interface Figure {
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly baseline?: number
  readonly ratio?: number
}
export type Emit = (r: Figure) => void
/** Whether the run asked for this section of the suite (always true without --only naming sections of it). */
export type Want = (section: string) => boolean
export type Bench = (emit: Emit, want: Want) => Promise<void>

const dir = new URL(".", import.meta.url).pathname
const args = process.argv.slice(2)
const onlyAt = args.indexOf("--only")
const only = onlyAt >= 0 ? (args[onlyAt + 1] ?? "").split(",").filter((s) => s !== "") : undefined
const filter = args.find((a, i) => !a.startsWith("--") && (onlyAt < 0 || i !== onlyAt + 1))
if (only !== undefined && only.length === 0) {
  console.error("--only needs a comma-separated list of suites or suite:section")
  process.exit(2)
}
const suiteOf = (file: string): string => basename(file, ".bench.ts")
const modules = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts") && (filter === undefined || f.includes(filter)))
  .filter((f) => only === undefined || only.some((o) => o.split(":")[0] === suiteOf(f)))
  .sort()
if (modules.length === 0) {
  console.error(`no suite matches (${[filter, only?.join(",")].filter((x) => x !== undefined).join(" ")})`)
  process.exit(2)
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(" ")
const startLoad = load()
const t0 = Date.now()
console.error(`bench: ${modules.map(suiteOf).join(", ")}; load average at start ${startLoad}`)
let failed = false
for (const file of modules) {
  const suite = suiteOf(file)
  const sections = only?.filter((o) => o.startsWith(`${suite}:`)).map((o) => o.slice(suite.length + 1))
  const want: Want = (section) => sections === undefined || sections.length === 0 || sections.includes(section)
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default?: Bench }
  if (typeof mod.default !== "function") {
    console.error(`${file}: no default-exported bench function`)
    failed = true
    continue
  }
  console.error(`bench: ${suite} (load average ${load()})`)
  await mod.default((r) => console.log(JSON.stringify({ suite, ...r })), want)
}
const seconds = Math.round((Date.now() - t0) / 1000)
console.error(`bench: done in ${seconds} s; load average at start ${startLoad}, at end ${load()}`)
console.log(JSON.stringify({ suite: "run", name: `wall time of this run (load average at start ${startLoad}, at end ${load()})`, value: seconds, unit: "s" }))
if (failed) process.exitCode = 1
