// What a fuzz corpus reaches in src/: the corpus is replayed under V8 precise (block) coverage. V8 merges a block into
// its parent when their counts agree, so what it reports exactly are the functions reached and the blocks never entered
// (count 0) inside them; the latter are listed with their code so a missed branch can be read.
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { Features } from "./engine.ts"

export interface FileCoverage {
  readonly file: string
  readonly functions: number
  readonly functionsReached: number
  /** Code of each block never entered in a reached function (transpiled JS, first line). */
  readonly missed: ReadonlyArray<string>
}

interface Range {
  readonly startOffset: number
  readonly endOffset: number
  readonly count: number
}
interface ScriptCoverage {
  readonly scriptId: string
  readonly url: string
  readonly functions: ReadonlyArray<{ readonly functionName: string; readonly ranges: ReadonlyArray<Range> }>
}

const ROOT = fileURLToPath(new URL("../../../", import.meta.url))

/**
 * Runs in a child process (coverage-child.ts) so that coverage starts before any target module is compiled: V8 only
 * reports blocks of functions compiled while precise coverage is on.
 */
export const collectCoverage = async (targetName: string, corpus: ReadonlyArray<Uint8Array>, under: ReadonlyArray<string>): Promise<FileCoverage[]> => {
  const session = new Session()
  session.connect()
  await session.post("Profiler.enable")
  await session.post("Debugger.enable")
  await session.post("Profiler.startPreciseCoverage", { callCount: true, detailed: true })
  const { TARGETS } = await import("./targets/index.ts")
  const target = TARGETS.find((t) => t.name === targetName)
  if (target === undefined) throw new Error(`no target ${targetName}`)
  for (const input of corpus) {
    try {
      await target.run(input, new Features())
    } catch {
      // Findings are reported by the fuzz run itself; coverage only counts what ran.
    }
  }
  const { result } = (await session.post("Profiler.takePreciseCoverage")) as unknown as { result: ReadonlyArray<ScriptCoverage> }
  await session.post("Profiler.stopPreciseCoverage")
  const out: FileCoverage[] = []
  for (const script of result) {
    if (!script.url.startsWith("file://")) continue
    const file = relative(ROOT, fileURLToPath(script.url))
    if (!under.some((u) => file.startsWith(u))) continue
    const { scriptSource } = (await session.post("Debugger.getScriptSource", { scriptId: script.scriptId })) as { scriptSource: string }
    let functions = 0
    let functionsReached = 0
    const missed: string[] = []
    for (const fn of script.functions) {
      const [whole, ...inner] = fn.ranges
      if (whole === undefined || fn.functionName === "<static_initializer>") continue
      const moduleBody = fn.functionName === "" && whole.startOffset === 0
      if (!moduleBody) {
        functions++
        if (whole.count > 0) functionsReached++
        else missed.push(`function ${fn.functionName || scriptSource.slice(whole.startOffset, whole.startOffset + 60).split("\n")[0]}`)
      }
      if (whole.count > 0) for (const r of inner) if (r.count === 0) missed.push(scriptSource.slice(r.startOffset, r.endOffset).trim().split("\n")[0]!.slice(0, 100))
    }
    out.push({ file, functions, functionsReached, missed })
  }
  session.disconnect()
  return out.sort((a, b) => a.file.localeCompare(b.file))
}

/** Replays `corpus` for `target` in a fresh process and returns what it reached under `under`. */
export const corpusCoverage = async (targetName: string, corpus: ReadonlyArray<Uint8Array>, under: ReadonlyArray<string>): Promise<FileCoverage[]> => {
  const dir = mkdtempSync(join(tmpdir(), "vdrelay-cov-"))
  try {
    writeFileSync(join(dir, "corpus.hex"), corpus.map((c) => Buffer.from(c).toString("hex")).join("\n"))
    const child = fileURLToPath(new URL("./coverage-child.ts", import.meta.url))
    const out = await new Promise<string>((done, fail) => {
      execFile(process.execPath, ["--import", "tsx", child, targetName, join(dir, "corpus.hex"), under.join(",")], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
        err === null ? done(stdout) : fail(new Error(`${err.message}\n${stderr}`)),
      )
    })
    return JSON.parse(out) as FileCoverage[]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
