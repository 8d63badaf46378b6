// Runs the real Worker bundle (`wrangler deploy --dry-run`) in raw Miniflare/workerd for plain-Node tests: a free port,
// a random signing key, Durable Object storage persisted in a temp dir so restart() can kill workerd and keep state.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare"
import { mintToken, type MintRequest } from "../../src/auth/token.ts"

export interface StartWorkerOptions {
  /** Extra or overriding `[vars]` (e.g. ALLOWED_ORIGINS). */
  readonly vars?: Readonly<Record<string, string>>
  /** Signing key; a random one per instance by default. */
  readonly signingKey?: string
  /** Durable Object storage directory; a fresh temp dir (removed by stop()) by default. */
  readonly persistDir?: string
  /** Forward workerd's log at this level (default: warnings and errors). */
  readonly logLevel?: LogLevel
  /** Receives the Worker's console output instead of this process's stdout (benchmarks keep stdout for figures). */
  readonly onLog?: (log: { readonly level: string; readonly message: string }) => void
  /** Listen on this port (npm start's --port) instead of a free one. */
  readonly port?: number
}

export interface LocalWorker {
  /** http://127.0.0.1:PORT — the same across restart(). */
  readonly url: string
  /** ws://127.0.0.1:PORT */
  readonly wsUrl: string
  readonly signingKey: string
  /** Mints a token signed with this instance's key (ttl defaults to 300 s). */
  readonly mint: (claims: Omit<MintRequest, "ttl"> & { readonly ttl?: number }) => Promise<string>
  /** Kills the workerd process and starts a new one on the same port and storage (every WebSocket drops). */
  readonly restart: () => Promise<void>
  readonly stop: () => Promise<void>
}

const ROOT = resolve(import.meta.dirname, "../..")
const WRANGLER_ENV = { WRANGLER_SEND_METRICS: "false", DO_NOT_TRACK: "1", CLOUDFLARE_CF_FETCH_ENABLED: "false" }

interface Bundle {
  readonly dir: string
  readonly workerOptions: Record<string, unknown>
}
let bundle: Promise<Bundle> | undefined

/** Builds the bundle once per test process (async: never block the event loop while workerd serves this process). */
const buildBundle = (): Promise<Bundle> =>
  (bundle ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "vdrelay-bundle-"))
    const wrangler = join(ROOT, "node_modules/wrangler/bin/wrangler.js")
    await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", dir], { ...process.env, ...WRANGLER_ENV })
    // wrangler.toml is the single source of bindings, flags and compatibility date (read offline, no telemetry).
    for (const [k, v] of Object.entries(WRANGLER_ENV)) process.env[k] ??= v
    const { unstable_getMiniflareWorkerOptions } = await import("wrangler")
    const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"))
    process.once("exit", () => void rm(dir, { recursive: true, force: true }))
    return { dir, workerOptions: workerOptions as unknown as Record<string, unknown> }
  })())

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> =>
  new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (out += d.toString()))
    child.on("error", fail)
    child.on("exit", (code) => (code === 0 ? done() : fail(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${out}`))))
  })

const freePort = (): Promise<number> =>
  new Promise((done, fail) => {
    const server = createServer()
    server.once("error", fail)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => done(port))
    })
  })

const makeMiniflare = (b: Bundle, port: number, persistDir: string, vars: Record<string, string>, logLevel: LogLevel, onLog: StartWorkerOptions["onLog"]) => {
  const w = b.workerOptions
  return new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port,
      resourcePersistencePath: persistDir,
      log: new Log(logLevel),
      cf: false, // no request.cf download from workers.cloudflare.com: tests run offline
      // VDRELAY_INSPECTOR_PORT: workerd's DevTools protocol on that port, e.g. for a CPU profile of the Worker's isolate
      // (bench/lib/profile-workerd.ts).
      ...(process.env.VDRELAY_INSPECTOR_PORT === undefined ? {} : { inspectorPort: Number(process.env.VDRELAY_INSPECTOR_PORT) }),
      ...(onLog === undefined ? {} : { handleStructuredLogs: onLog }),
      name: "vdrelay",
      modules: true,
      scriptPath: join(b.dir, "index.js"),
      modulesRoot: b.dir,
      compatibilityDate: w.compatibilityDate as string,
      compatibilityFlags: w.compatibilityFlags as string[],
      bindings: { ...(w.bindings as Record<string, string>), ...vars },
      durableObjects: w.durableObjects as Record<string, { className: string; useSQLite: boolean }>,
    }),
  )
}

export const startWorker = async (opts: StartWorkerOptions = {}): Promise<LocalWorker> => {
  const b = await buildBundle()
  const signingKey = opts.signingKey ?? randomBytes(32).toString("hex")
  const ownDir = opts.persistDir === undefined
  const persistDir = opts.persistDir ?? (await mkdtemp(join(tmpdir(), "vdrelay-do-")))
  // A development stack: the demo console is on (production leaves VDRELAY_DEMO_CONSOLE unset).
  const vars = { VDRELAY_DEMO_CONSOLE: "on", ...opts.vars, VDRELAY_SIGNING_KEY: signingKey }
  const logLevel = opts.logLevel ?? LogLevel.WARN
  const port = opts.port ?? (await freePort())
  let mf = makeMiniflare(b, port, persistDir, vars, logLevel, opts.onLog)
  await mf.ready
  let stopped = false
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    signingKey,
    mint: (claims) => mintToken(signingKey, { ttl: 300, ...claims }),
    restart: async () => {
      await mf.dispose()
      mf = makeMiniflare(b, port, persistDir, vars, logLevel, opts.onLog)
      await mf.ready
    },
    stop: async () => {
      if (stopped) return
      stopped = true
      await mf.dispose()
      if (ownDir) await rm(persistDir, { recursive: true, force: true })
    },
  }
}
