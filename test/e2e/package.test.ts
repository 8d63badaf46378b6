// The npm package as a consumer gets it: `npm run build:pkg`, `npm pack` of dist/pkg, the tarball installed into a
// fresh project outside this repository (msgpackr, its one dependency, from npm's cache or the registry), then used
// the three ways the SDK is: imported from plain Node (no TypeScript loader), type-checked by a strict TypeScript
// consumer under moduleResolution bundler and node16, bundled for a browser by esbuild (no Node built-ins), and run as
// a Worker in workerd.
import { execFileSync } from "node:child_process"
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { gzipSync } from "node:zlib"
import { build } from "esbuild"
import { Miniflare, convertV4MiniflareOptions } from "miniflare"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const ROOT = resolve(import.meta.dirname, "../..")
const TSC = join(ROOT, "node_modules/typescript/bin/tsc")
const PKG_DIR = join(ROOT, "dist/pkg")

const run = (file: string, args: ReadonlyArray<string>, cwd: string): string => {
  try {
    return execFileSync(file, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_audit: "false", npm_config_fund: "false" } })
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${file} ${args.join(" ")} failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`)
  }
}

// What a consumer writes: a console session, a token minted and verified, the constants it switches on.
const CONSUMER_TS = `import { ClipboardType, connect, type ConnectOptions, type Session } from "vdrelay/client"
import { generateKeyPair, mintToken, verifyToken, type MintRequest } from "vdrelay/auth"

export const open = (url: string, token: string): Promise<Session> => {
  const options: ConnectOptions = { url, token, role: "viewer", clientName: "consumer" }
  return connect(options)
}
export const text: number = ClipboardType.Utf8Text
export const mint = async (secret: string): Promise<boolean> => {
  const req: MintRequest = { tenant: "t", vm: "v", role: "viewer", ttl: 60 }
  const verified = await verifyToken(secret, await mintToken(secret, req))
  return verified._tag === "Ok" && verified.claims.vm === "v"
}
export const eddsa = async (): Promise<string> => mintToken((await generateKeyPair()).privateJwk, { tenant: "t", vm: "v", role: "bridge", ttl: 60 })
`

const tsconfig = (moduleResolution: "bundler" | "node16"): string =>
  JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: moduleResolution === "bundler" ? "ESNext" : "Node16",
      moduleResolution,
      lib: ["ES2023", "DOM", "DOM.Iterable"],
      types: [],
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      verbatimModuleSyntax: true,
      // The package's own declarations are checked too: the consumer must not need our compiler options.
      skipLibCheck: false,
      noEmit: true,
    },
    files: ["consumer.ts"],
  })

describe("the vdrelay npm package (npm pack, installed in a fresh project)", () => {
  let project: string
  let tarball: string

  beforeAll(async () => {
    // `npm run build:pkg`: tsc to dist/pkg/dist, the bundled command, the generated manifest.
    run(process.execPath, ["--import", "tsx", "scripts/build-pkg.ts"], ROOT)
    project = await mkdtemp(join(tmpdir(), "vdrelay-consumer-"))
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", project, PKG_DIR], ROOT)) as Array<{ filename: string }>
    tarball = join(project, packed[0]!.filename)
    await writeFile(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
    run("npm", ["install", "--prefer-offline", "--no-package-lock", tarball], project)
  }, 150_000)

  afterAll(async () => {
    if (project !== undefined) await rm(project, { recursive: true, force: true })
  })

  it("ships built JavaScript and declarations only: no TypeScript sources, no tests", () => {
    const files = run("tar", ["-tzf", tarball], project).trim().split("\n")
    expect(files).toContain("package/dist/client/index.js")
    expect(files).toContain("package/dist/auth/index.d.ts")
    expect(files).toContain("package/bin/vdrelay.mjs")
    expect(files.filter((f) => (f.endsWith(".ts") && !f.endsWith(".d.ts")) || f.includes("/test/"))).toEqual([])
  })

  it("imports in plain Node: a token minted and verified, the client's connect", async () => {
    await writeFile(
      join(project, "use.mjs"),
      `import { connect, ClipboardType } from "vdrelay/client"
import { mintToken, verifyToken } from "vdrelay/auth"
const secret = "a-consumer-secret-of-at-least-32-bytes!!"
const v = await verifyToken(secret, await mintToken(secret, { tenant: "t", vm: "v", role: "viewer", ttl: 60 }))
console.log(JSON.stringify({ tag: v._tag, vm: v.claims.vm, connect: typeof connect, utf8: ClipboardType.Utf8Text }))
`,
    )
    // No loader, no flags: what `node use.mjs` does in any project.
    const out = JSON.parse(run(process.execPath, ["use.mjs"], project)) as Record<string, unknown>
    expect(out).toEqual({ tag: "Ok", vm: "v", connect: "function", utf8: 1 })
    // The command line comes with it, bundled.
    expect(run(join(project, "node_modules/.bin/vdrelay"), ["token", "--help"], project)).toMatch(/^usage: vdrelay token/)
  })

  for (const resolution of ["bundler", "node16"] as const) {
    it(`type-checks a strict consumer with moduleResolution ${resolution}`, async () => {
      const dir = join(project, `tsc-${resolution}`)
      await mkdir(dir, { recursive: true })
      await writeFile(join(dir, "consumer.ts"), CONSUMER_TS)
      await writeFile(join(dir, "tsconfig.json"), tsconfig(resolution))
      // node16 reads the nearest package.json's "type" to decide the consumer is an ES module.
      await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }))
      run(process.execPath, [TSC, "-p", "tsconfig.json"], dir)
    })
  }

  it("runs in a Worker (workerd): a token minted and verified, the client's module loaded", async () => {
    await writeFile(
      join(project, "worker.js"),
      `import { connect } from "vdrelay/client"
import { mintToken, verifyToken } from "vdrelay/auth"
export default {
  async fetch() {
    const secret = "a-worker-secret-of-at-least-32-bytes!!!"
    const v = await verifyToken(secret, await mintToken(secret, { tenant: "t", vm: "w", role: "viewer", ttl: 60 }))
    return Response.json({ tag: v._tag, vm: v.claims.vm, connect: typeof connect })
  },
}
`,
    )
    // As wrangler bundles a Worker: ES modules, the workerd/worker/browser export conditions.
    const out = await build({
      entryPoints: [join(project, "worker.js")],
      absWorkingDir: project,
      bundle: true,
      format: "esm",
      platform: "neutral",
      conditions: ["workerd", "worker", "browser"],
      mainFields: ["module", "main"],
      write: false,
      logLevel: "silent",
    })
    const compatibilityDate = /^compatibility_date = "([^"]+)"/m.exec(await readFile(join(ROOT, "wrangler.toml"), "utf8"))![1]!
    // cf: false: no request.cf download, the test runs offline.
    const mf = new Miniflare(convertV4MiniflareOptions({ name: "consumer", modules: true, script: out.outputFiles[0]!.text, compatibilityDate, cf: false }))
    try {
      const res = await mf.dispatchFetch("http://worker.test/")
      expect(await res.json()).toEqual({ tag: "Ok", vm: "w", connect: "function" })
    } finally {
      await mf.dispose()
    }
  })

  it("bundles for the browser with esbuild (no Node built-ins); gzip size reported", async () => {
    await writeFile(join(project, "browser.js"), `import { connect } from "vdrelay/client"\nimport { mintToken } from "vdrelay/auth"\nglobalThis.vdrelay = { connect, mintToken }\n`)
    const out = await build({
      entryPoints: [join(project, "browser.js")],
      absWorkingDir: project,
      bundle: true,
      format: "esm",
      platform: "browser",
      minify: true,
      write: false,
      logLevel: "silent",
    })
    const js = out.outputFiles[0]!.contents
    const gz = gzipSync(js).length
    console.log(`browser bundle (vdrelay/client + vdrelay/auth): ${js.length} bytes, ${gz} bytes gzip`)
    expect(new TextDecoder().decode(js)).toContain("Utf8Text")
    const manifest = JSON.parse(await readFile(join(project, "node_modules/vdrelay/package.json"), "utf8")) as { dependencies: Record<string, string> }
    expect(Object.keys(manifest.dependencies)).toEqual(["msgpackr"])
  })
})
