// Builds the `vdrelay` command (token minting and the host bridge) into one self-contained ES module,
// dist/bridge/vdrelay.mjs: every dependency bundled, no TypeScript compiled at run time, nothing beside it. It runs on
// Debian 12's own nodejs (18.20) and newer, which is how the .deb ships it (scripts/build-deb.ts, docs/operations.md).
//
// The entry is bin/vdrelay.mjs itself, so its usage text and command table stay the one source: at bundle time its
// tsx loader is dropped and its `import(new URL("../src/…", import.meta.url))` becomes a static `import("../src/…")`
// per command, which esbuild follows. A change to that file's shape fails this build rather than shipping a CLI that
// cannot find its commands.
import { build, type Plugin, stop } from "esbuild"
import { mkdir, readFile, stat } from "node:fs/promises"
import { dirname, join, resolve } from "node:path"

const ROOT = resolve(import.meta.dirname, "..")
const ENTRY = join(ROOT, "bin/vdrelay.mjs")
export const BRIDGE_BUNDLE = join(ROOT, "dist/bridge/vdrelay.mjs")

/** The oldest Node the bundle must run on: Debian 12 (bookworm) ships nodejs 18.20. */
export const MIN_NODE = "18.19"

/** bin/vdrelay.mjs without tsx: each command's module imported by a literal path esbuild can bundle. */
export const bundleEntrySource = (source: string): string => {
  const table = /const commands = \{([^}]*)\}/.exec(source)
  const dynamicImport = "await import(new URL(commands[command], import.meta.url).href)"
  const tsx = /import \{ register \} from "tsx\/esm\/api"\s*register\(\)/
  if (table === null || !source.includes(dynamicImport) || !tsx.test(source)) {
    throw new Error("bin/vdrelay.mjs changed shape (command table, tsx register or command import): update scripts/build-bridge.ts")
  }
  const rows = table[1]!.split("\n").filter((l) => l.trim() !== "")
  const entries = rows.map((row) => {
    const m = /^\s*(?:"([\w-]+)"|(\w+)):\s*"([^"]+)",?\s*$/.exec(row)
    if (m === null) throw new Error(`bin/vdrelay.mjs: command table row not understood: ${row.trim()}`)
    return `  ${JSON.stringify(m[1] ?? m[2])}: () => import(${JSON.stringify(m[3])}),`
  })
  if (entries.length === 0) throw new Error("bin/vdrelay.mjs: no commands found in its command table")
  return source
    .replace(tsx, "")
    .replace(table[0], `const commands = {\n${entries.join("\n")}\n}`)
    .replace(dynamicImport, "await commands[command]()")
}

const entryPlugin: Plugin = {
  name: "vdrelay-entry",
  setup(b) {
    b.onLoad({ filter: /bin[\\/]vdrelay\.mjs$/ }, async (args) => ({ contents: bundleEntrySource(await readFile(args.path, "utf8")), loader: "js", resolveDir: dirname(args.path) }))
  },
}

/**
 * Node 18 has WebCrypto only as `require("node:crypto").webcrypto` (the `crypto` global came in Node 19; the token
 * code signs and verifies Ed25519 through `crypto.subtle`). CommonJS dependencies (ws) call `require`, which an ES
 * module lacks: give them Node's own.
 */
// (The entry's own `#!/usr/bin/env node` line stays first: esbuild keeps it above the banner.)
const BANNER = [
  `// vdrelay ${"VERSION"}: bundled by scripts/build-bridge.ts; needs Node >= ${MIN_NODE}.`,
  'import { createRequire as __vdrelayCreateRequire } from "node:module";',
  'import { webcrypto as __vdrelayWebcrypto } from "node:crypto";',
  "const require = __vdrelayCreateRequire(import.meta.url);",
  "if (globalThis.crypto === undefined) Object.defineProperty(globalThis, \"crypto\", { value: __vdrelayWebcrypto, configurable: true, writable: true });",
].join("\n")

export const buildBridge = async (out = BRIDGE_BUNDLE): Promise<{ file: string; bytes: number }> => {
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string }
  await mkdir(dirname(out), { recursive: true })
  try {
    await build({
      entryPoints: [ENTRY],
      outfile: out,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node18",
      // Native speed-ups ws and msgpackr load when present; both fall back to JavaScript when the require fails.
      external: ["bufferutil", "utf-8-validate", "msgpackr-extract"],
      plugins: [entryPlugin],
      banner: { js: BANNER.replace("VERSION", pkg.version) },
      legalComments: "eof",
      minifySyntax: true,
      logLevel: "warning",
    })
  } finally {
    await stop()
  }
  return { file: out, bytes: (await stat(out)).size }
}

if (import.meta.filename === process.argv[1]) {
  const { file, bytes } = await buildBridge()
  process.stdout.write(`${file}: ${(bytes / 1024).toFixed(0)} KiB\n`)
}
