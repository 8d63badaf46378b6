// The whole local stack behind `npm start` (and the browser tests): the Worker on local workerd, a VM agent (the real
// spice-vdagent under Xvfb, or the built-in simulator), and `vdrelay bridge` as its own process between them, with
// dev tokens signed by a fresh random key. Everything it starts, stop() stops, in reverse order.
import { randomBytes } from "node:crypto"
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { connect } from "../../src/client/index.ts"
import type { Role } from "../../src/link/types.ts"
import { type Managed, spawnGroup } from "../../test/harness/processes.ts"
import { type RealAgent, findBinary, realAgentAvailable, startRealAgent } from "../../test/harness/real-agent.ts"
import { type LocalWorker, startWorker } from "../../test/harness/worker.ts"
import { buildConsole } from "../build-console.ts"
import { type AgentSimHandle, startAgentSim } from "../../test/harness/agent-sim-server.ts"

const ROOT = resolve(import.meta.dirname, "../..")

/** A startup failure with what went wrong and what to do about it. */
export class StackError extends Error {
  constructor(
    readonly reason: "PortInUse" | "MissingPackage" | "StartFailed",
    message: string,
    readonly fix: string,
  ) {
    super(message)
    this.name = "StackError"
  }
}

export interface StackOptions {
  /** Worker port on 127.0.0.1 (0 = any free port). */
  readonly port: number
  readonly tenant?: string
  readonly vm?: string
  /** "auto": the real agent when installed, else the simulator. */
  readonly agent?: "auto" | "real" | "sim"
  /** Dev token lifetime, seconds (default 12 h). */
  readonly tokenTtl?: number
  readonly progress?: (line: string) => void
}

export interface StackAgent {
  readonly kind: "real" | "sim"
  /** Where file transfers land. */
  readonly xferDir: string
  /** X display of the real agent's session (undefined for the simulator). */
  readonly display: string | undefined
  /** Copies text inside the guest (xclip -i, or the simulator's guest clipboard). */
  setClipboard(text: string): Promise<void>
  /** Pastes text inside the guest (xclip -o, or the simulator's guest clipboard). */
  getClipboard(): Promise<string>
  readonly real: RealAgent | undefined
  readonly sim: AgentSimHandle | undefined
}

export interface Stack {
  /** http://127.0.0.1:PORT */
  readonly url: string
  readonly tenant: string
  readonly vm: string
  readonly worker: LocalWorker
  readonly agent: StackAgent
  readonly bridge: Managed
  /** A console URL with a fresh dev token in the fragment (`role` says what the token allows; `as` what to open as). */
  consoleUrl(role: Role, opts?: { readonly as?: Role }): Promise<string>
  /** Settles if the bridge process exits before stop(). */
  readonly bridgeExited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stop(): Promise<void>
}

const checkPort = (port: number): Promise<void> =>
  new Promise((resolvePort, reject) => {
    if (port === 0) return resolvePort()
    const server = createServer()
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new StackError("PortInUse", `port ${port} on 127.0.0.1 is in use (another npm start or wrangler dev?)`, `run \`npm start -- --port ${port + 1}\`, or \`--port 0\` for any free port`)
          : err,
      ),
    )
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePort()))
  })

const startAgent = async (want: "auto" | "real" | "sim", progress: (l: string) => void): Promise<StackAgent> => {
  const useReal = want === "real" || (want === "auto" && realAgentAvailable())
  if (!useReal) {
    const missing = ["spice-vdagentd", "spice-vdagent", "Xvfb", "xclip"].filter((b) => findBinary(b) === undefined)
    progress(
      want === "sim"
        ? "agent: built-in simulator (--agent sim)"
        : `agent: built-in simulator, because ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not installed; for the real Debian spice-vdagent run \`sudo bash infra/install-deps.sh\` (or apt-get install spice-vdagent xvfb xclip)`,
    )
    const sim = await startAgentSim()
    return { kind: "sim", xferDir: sim.xferDir, display: undefined, setClipboard: async (t) => sim.setClipboard(t), getClipboard: async () => (await sim.getClipboard()) ?? "", real: undefined, sim }
  }
  if (!realAgentAvailable()) {
    const missing = ["spice-vdagentd", "spice-vdagent", "Xvfb", "xclip"].filter((b) => findBinary(b) === undefined)
    throw new StackError("MissingPackage", `--agent real, but ${missing.join(", ")} not found`, "run `sudo bash infra/install-deps.sh` (Debian packages spice-vdagent xvfb xclip), or use --agent sim")
  }
  const real = await startRealAgent()
  progress(`agent: real spice-vdagent under Xvfb on display ${real.display}`)
  return {
    kind: "real",
    xferDir: real.xferDir,
    display: real.display,
    setClipboard: (t) => real.setClipboard(t),
    // UTF8_STRING: xclip's default target (STRING, Latin-1) is not what an app pasting text asks for.
    getClipboard: async () => (await real.getClipboard({ target: "UTF8_STRING" })).toString("utf8"),
    real,
    sim: undefined,
  }
}

export const startStack = async (o: StackOptions): Promise<Stack> => {
  const progress = o.progress ?? (() => {})
  const tenant = o.tenant ?? "dev", vm = o.vm ?? "demo"
  const undo: Array<() => Promise<unknown>> = []
  const stop = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) await f().catch(() => {})
  }
  try {
    await checkPort(o.port)
    if (await buildConsole()) progress("rebuilt the console page (workers/console/generated/assets.ts)")
    progress("starting the worker on local workerd (Miniflare)…")
    // A fresh random signing key per run: nothing secret lives in the repository.
    const worker = await startWorker({
      port: o.port === 0 ? undefined : o.port,
      signingKey: randomBytes(32).toString("hex"),
      // The relay's info lines (clients joining and leaving) would drown the console URL: warnings and errors only.
      onLog: (l) => (l.level === "warn" || l.level === "error" ? progress(`worker ${l.level}: ${l.message}`) : undefined),
    })
    undo.push(() => worker.stop())
    progress(`worker listening at ${worker.url}`)

    const agent = await startAgent(o.agent ?? "auto", progress)
    undo.push(() => agent.real?.stop() ?? agent.sim!.stop())

    const runDir = await mkdtemp(join(tmpdir(), "vdrelay-start-"))
    undo.push(() => rm(runDir, { recursive: true, force: true }))
    const tokenFile = join(runDir, "bridge.token")
    await writeFile(tokenFile, await worker.mint({ tenant, vm, role: "bridge", ttl: o.tokenTtl ?? 43_200 }), { mode: 0o600 })
    await chmod(tokenFile, 0o600)
    const config = join(runDir, "bridge.json")
    await writeFile(config, JSON.stringify({ bridge: "npm-start", edge: `${worker.wsUrl}/v1/vms/{vm}/agent`, tokenFile, vms: [{ id: vm, chardev: agent.real?.hostSocketPath ?? agent.sim!.hostSocketPath }] }, null, 2))
    progress("starting the bridge (vdrelay bridge)…")
    const bridge = spawnGroup("bridge", process.execPath, [join(ROOT, "bin/vdrelay.mjs"), "bridge", "--config", config, "--log-level", "warn"], { cwd: ROOT })
    undo.push(() => bridge.stop(5000))

    await waitForAgent(worker, tenant, vm, bridge)
    progress(`agent connected through the bridge; files sent from the console land in ${agent.xferDir}`)

    return {
      url: worker.url,
      tenant,
      vm,
      worker,
      agent,
      bridge,
      bridgeExited: bridge.exited,
      consoleUrl: async (role, opts = {}) => {
        const token = await worker.mint({ tenant, vm, role, ttl: o.tokenTtl ?? 43_200 })
        const as = opts.as !== undefined && opts.as !== role ? `&role=${opts.as}` : ""
        return `${worker.url}/console#token=${token}${as}`
      },
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** The stack is ready once a console sees the agent connected through the bridge. */
const waitForAgent = async (worker: LocalWorker, tenant: string, vm: string, bridge: Managed, timeoutMs = 30_000): Promise<void> => {
  const token = await worker.mint({ tenant, vm, role: "viewer" })
  const session = await connect({ url: `${worker.wsUrl}/v1/vms/${vm}/console`, token, role: "viewer", clientName: "npm-start-probe", reconnect: false })
  try {
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new StackError("StartFailed", `the agent did not connect within ${timeoutMs / 1000} s; bridge log:\n${bridge.log.text || "(empty)"}`, "check the bridge log above")), timeoutMs)
      const done = (): void => (clearTimeout(timer), ok())
      if (session.agent.connected) return done()
      session.on("agent", (a) => a.connected && done())
      void bridge.exited.then(({ code }) => {
        clearTimeout(timer)
        fail(new StackError("StartFailed", `the bridge exited (${code}):\n${bridge.log.text}`, "see the bridge's message above"))
      })
    })
  } finally {
    await session.close()
  }
}
