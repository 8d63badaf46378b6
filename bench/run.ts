// Runs every bench/*.bench.ts module and prints one JSON line per figure it emits (`npm run bench [filter]`).
import { readdirSync } from "node:fs"
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
export type Bench = (emit: Emit) => Promise<void>

const dir = new URL(".", import.meta.url).pathname
const filter = process.argv[2]
const modules = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts") && (filter === undefined || f.includes(filter)))
  .sort()

let failed = false
for (const file of modules) {
  const suite = basename(file, ".bench.ts")
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default?: Bench }
  if (typeof mod.default !== "function") {
    console.error(`${file}: no default-exported bench function`)
    failed = true
    continue
  }
  await mod.default((r) => console.log(JSON.stringify({ suite, ...r })))
}
if (failed) process.exitCode = 1
