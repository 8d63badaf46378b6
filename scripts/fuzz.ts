// Coverage-minded fuzzing of every vdrelay decoder and of the session actor (docs/reliability.md):
//   npm run fuzz -- --target stream --inputs 1000000 [--seed 1] [--max-seconds 600] [--corpus-dir DIR] [--json FILE]
//   npm run fuzz -- --target all --inputs 1000000
// Exits 1 when any input crashed a target or broke one of its oracles; the offending inputs are written as hex.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { corpusCoverage } from "../test/harness/fuzz/coverage.ts"
import { runFuzz, type FuzzReport } from "../test/harness/fuzz/engine.ts"
import { TARGETS } from "../test/harness/fuzz/targets/index.ts"

const { values } = parseArgs({
  options: {
    target: { type: "string", default: "all" },
    inputs: { type: "string", default: "1000000" },
    seed: { type: "string", default: "1" },
    "max-seconds": { type: "string" },
    "corpus-dir": { type: "string" },
    json: { type: "string" },
    list: { type: "boolean", default: false },
    replay: { type: "string" },
    "replay-file": { type: "string" },
    coverage: { type: "boolean", default: false },
  },
})

if (values.list) {
  for (const t of TARGETS) console.log(`${t.name.padEnd(16)} ${t.description}`)
  process.exit(0)
}

if (values.replay !== undefined || values["replay-file"] !== undefined) {
  const target = TARGETS.find((t) => t.name === values.target)
  if (target === undefined) throw new Error("--replay needs one --target")
  const text = values.replay ?? readFileSync(values["replay-file"]!, "utf8")
  const input = new Uint8Array(Buffer.from(text.trim(), "hex"))
  const { Features } = await import("../test/harness/fuzz/engine.ts")
  const f = new Features()
  await target.run(input, f)
  console.log(`ok: ${f.items.length} features`)
  process.exit(0)
}

const names = values.target === "all" ? TARGETS.map((t) => t.name) : values.target.split(",")
const unknown = names.filter((n) => !TARGETS.some((t) => t.name === n))
if (unknown.length > 0) {
  console.error(`unknown target(s) ${unknown.join(", ")}; --list shows them`)
  process.exit(2)
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")
const mib = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`

const loadCorpus = (dir: string | undefined, name: string): Uint8Array[] => {
  if (dir === undefined) return []
  try {
    return readdirSync(join(dir, name)).map((f) => new Uint8Array(Buffer.from(readFileSync(join(dir, name, f), "utf8").trim(), "hex")))
  } catch {
    return []
  }
}

const reports: FuzzReport[] = []
for (const name of names) {
  const target = TARGETS.find((t) => t.name === name)!
  const inputs = Number(values.inputs)
  const seed = Number(values.seed)
  console.log(`fuzz ${name}: ${target.description}`)
  const r = await runFuzz(target, {
    inputs,
    seed,
    corpus: loadCorpus(values["corpus-dir"], name),
    ...(values["max-seconds"] !== undefined ? { maxMs: Number(values["max-seconds"]) * 1000 } : {}),
    progressEvery: Math.max(10_000, Math.floor(inputs / 10)),
    onProgress: (done, features, corpus) => console.log(`  ${done} inputs, ${features} features, corpus ${corpus}`),
  })
  reports.push(r)
  console.log(
    `  => ${r.inputs} inputs in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.inputs / (r.ms / 1000))}/s), ` +
      `${r.crashes} crashes, ${r.oracleFailures} oracle failures, ${r.features} features, corpus ${r.corpus.length}, ` +
      `peak heap ${mib(r.peakHeapBytes)}, peak RSS ${mib(r.peakRssBytes)}`,
  )
  // Every finding's whole input goes to a file (inputs reach 8 KiB or more): replay it with --replay-file.
  const findingsDir = join(tmpdir(), "vdrelay-fuzz-findings")
  if (r.findings.length > 0) mkdirSync(findingsDir, { recursive: true })
  r.findings.forEach((x, i) => {
    const file = join(findingsDir, `${name}-${seed}-${i}.hex`)
    writeFileSync(file, hex(x.input))
    console.log(`  ${x.kind} at input ${x.index}: ${x.message.split("\n").slice(0, 6).join("\n    ")}\n    replay: npm run fuzz -- --target ${name} --replay-file ${file}`)
  })
  if (values.coverage) {
    // V8 reports a range with count 0 only where a block was never entered: those are the blocks listed as missed.
    const cov = await corpusCoverage(target.name, r.corpus, target.covers)
    // Files this target reaches at all; a shared module's functions for other targets are not its business.
    for (const c of cov.filter((x) => x.functionsReached > 0)) {
      const blocks = c.missed.filter((m) => !m.startsWith("function "))
      console.log(`  coverage ${c.file}: functions ${c.functionsReached}/${c.functions}, blocks never entered in reached functions ${blocks.length}`)
      for (const m of blocks) console.log(`      missed: ${m}`)
    }
  }
  if (values["corpus-dir"] !== undefined) {
    const dir = join(values["corpus-dir"], name)
    mkdirSync(dir, { recursive: true })
    r.corpus.forEach((c, i) => writeFileSync(join(dir, `${String(i).padStart(5, "0")}.hex`), hex(c)))
    r.findings.forEach((x, i) => writeFileSync(join(dir, `finding-${i}.hex`), hex(x.input)))
  }
}
if (values.json !== undefined) {
  const out = reports.map(({ corpus, findings, seen, ...r }) => ({
    ...r,
    corpus: corpus.length,
    findings: findings.map((x) => ({ ...x, input: hex(x.input) })),
    seen: Object.fromEntries(seen),
  }))
  writeFileSync(values.json, JSON.stringify(out, null, 2))
}
process.exit(reports.some((r) => r.crashes + r.oracleFailures > 0) ? 1 : 0)
