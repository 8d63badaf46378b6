// Builds the publishable npm package `vdrelay` into dist/pkg/ (then `npm pack ./dist/pkg`, or `npm run pack:pkg`):
//   vdrelay/client    the client SDK (browsers through a bundler, Node >= 22, Workers)
//   vdrelay/auth      tokens: mintToken, verifyToken, Ed25519 keys (jwk), bridge proofs
//   vdrelay/protocol  the vdagent wire codecs the SDK is built on
//   bin vdrelay       the bundled command (scripts/build-bridge.ts): `npx vdrelay token …` with no TypeScript
// ES modules with declarations, emitted by tsc (tsconfig.build.json) from the same sources the repository imports.
//
// Why a generated manifest and not the repository's package.json: the repository's dependencies are those of the
// bridge, the Worker and the tests (effect, ws, tsx, and the 185 MiB linux-x64 Node as an optional dependency), which
// every consumer of the SDK would download. The package's dependencies are exactly the bare imports of the emitted
// code (msgpackr), with the repository's version ranges; the build fails if one is missing there.
import { execFileSync } from "node:child_process"
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { buildBridge } from "./build-bridge.ts"

const ROOT = resolve(import.meta.dirname, "..")
export const PKG_DIR = join(ROOT, "dist/pkg")
/** Subpath → the emitted entry (without extension) under dist/pkg/dist. */
const ENTRIES = { client: "client/index", auth: "auth/index", protocol: "protocol/index" } as const

interface RootManifest {
  name: string
  version: string
  description: string
  license: string
  engines: Record<string, string>
  dependencies: Record<string, string>
}

const walk = async (dir: string): Promise<Array<string>> =>
  (await readdir(dir, { withFileTypes: true, recursive: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))

/**
 * tsc rewrites `./x.ts` to `./x.js` in the JavaScript it emits, not in declarations: rewrite those too, or a consumer
 * without allowImportingTsExtensions gets TS5097 for every import of ours.
 */
export const rewriteDeclarationSpecifiers = (text: string): string =>
  text.replace(/((?:from|import)\s*\(?\s*["'])(\.\.?\/[^"']+)\.ts(["'])/g, "$1$2.js$3")

/** Bare module specifiers the emitted JavaScript imports (node: built-ins are refused: the package runs in browsers). */
export const bareImports = (js: string): Array<string> =>
  [...js.matchAll(/(?:from|import)\s*\(?\s*["']([^"'.][^"']*)["']/g)].map((m) => m[1]!).map((s) => (s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : s.split("/")[0]!))

export const buildPkg = async (): Promise<string> => {
  const root = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as RootManifest
  await rm(PKG_DIR, { recursive: true, force: true })
  execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json")], { cwd: ROOT, stdio: "inherit" })

  const deps = new Set<string>()
  for (const file of await walk(join(PKG_DIR, "dist"))) {
    const text = await readFile(file, "utf8")
    if (file.endsWith(".d.ts")) await writeFile(file, rewriteDeclarationSpecifiers(text))
    else if (file.endsWith(".js")) for (const d of bareImports(text)) deps.add(d)
  }
  const dependencies: Record<string, string> = {}
  for (const d of [...deps].sort()) {
    if (d.startsWith("node:")) throw new Error(`the package imports ${d}: it must run in browsers and Workers too`)
    const range = root.dependencies[d]
    if (range === undefined) throw new Error(`the package imports ${d}, which is not in package.json's dependencies`)
    dependencies[d] = range
  }

  await buildBridge(join(PKG_DIR, "bin/vdrelay.mjs"))
  const exports: Record<string, unknown> = { "./package.json": "./package.json" }
  for (const [sub, entry] of Object.entries(ENTRIES)) exports[`./${sub}`] = { types: `./dist/${entry}.d.ts`, default: `./dist/${entry}.js` }
  const manifest = {
    name: root.name,
    version: root.version,
    description: root.description,
    license: root.license,
    type: "module",
    engines: root.engines,
    // Nothing runs on import: bundlers may drop whatever a consumer does not use.
    sideEffects: false,
    exports,
    bin: { vdrelay: "bin/vdrelay.mjs" },
    files: ["dist", "bin", "README.md", "CHANGELOG.md", "LICENSE"],
    dependencies,
  }
  await writeFile(join(PKG_DIR, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  for (const f of ["LICENSE", "CHANGELOG.md"]) await copyFile(join(ROOT, f), join(PKG_DIR, f))
  await writeFile(join(PKG_DIR, "README.md"), await packageReadme(root.version))
  return PKG_DIR
}

const packageReadme = async (version: string): Promise<string> => `# vdrelay ${version}

The client SDK and token library of vdrelay, a relay for the SPICE guest agent (vdagent) channel on Cloudflare
Workers. ES modules with TypeScript declarations; they run in browsers (through a bundler), Node >= 22 and Workers.

\`\`\`ts
import { connect } from "vdrelay/client"      // consoles: clipboard, display, file transfer, mouse
import { mintToken } from "vdrelay/auth"       // tokens for consoles, bridges and operators
\`\`\`

An HS256 key (development) is the UTF-8 bytes of the string you pass, at least 32 of them, never base64-decoded
(\`vdrelay token --key-file F\` passes F's text without its final newline); production keys are Ed25519 JWKs (\`generateKeyPair\`, \`vdrelay keygen\`).

\`npx vdrelay token --help\` mints tokens from a shell; \`vdrelay keygen\` and \`vdrelay host-key\` make Ed25519 keys.
The host bridge ships as a Debian package (vdrelay-bridge). Documentation: docs/client.md, docs/security.md and
docs/reference.md in the repository. License: MIT.
`

if (import.meta.filename === process.argv[1]) process.stdout.write(`${await buildPkg()}\n`)
