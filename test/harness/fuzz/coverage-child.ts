// Child process of coverage.ts: starts V8 precise coverage, then loads the fuzz target and replays a corpus file
// (one hex input per line); prints the coverage of the files under the given prefixes as JSON.
import { readFileSync } from "node:fs"
import { collectCoverage } from "./coverage.ts"

const [target, corpusFile, under] = process.argv.slice(2) as [string, string, string]
const corpus = readFileSync(corpusFile, "utf8").split("\n").filter((l) => l !== "").map((l) => new Uint8Array(Buffer.from(l, "hex")))
process.stdout.write(JSON.stringify(await collectCoverage(target, corpus, under.split(","))))
