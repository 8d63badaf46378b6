// `npm run build:console`: writes workers/console/generated/assets.ts (test/harness/console-assets.ts renders it);
// `--check` fails when the committed file is stale.
import { readFile } from "node:fs/promises"
import { stop } from "esbuild"
import { GENERATED, buildConsole, renderAssets } from "../test/harness/console-assets.ts"

if (process.argv.includes("--check")) {
  const stale = (await readFile(GENERATED, "utf8").catch(() => "")) !== (await renderAssets().finally(() => stop()))
  if (stale) {
    process.stderr.write("workers/console/generated/assets.ts is stale: run `npm run build:console` and commit it\n")
    process.exit(1)
  }
} else {
  const changed = await buildConsole()
  process.stdout.write(changed ? "wrote workers/console/generated/assets.ts\n" : "workers/console/generated/assets.ts is up to date\n")
}
