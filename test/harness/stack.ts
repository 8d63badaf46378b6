// The whole relay on this machine, the one stack launcher for `npm start`, the end-to-end tests and chaos: the Worker on
// local workerd, a VM agent (the real spice-vdagent under Xvfb behind the emulated chardev, or the built-in simulator),
// optionally a fake QMP monitor following the guest port and a cuttable proxy on the tunnel, and `vdrelay bridge` as
// its own process between them, with tokens signed by a fresh random key. Everything it starts, stop() stops, in
// reverse order. (The benchmarks share its bridge launcher, bridge-process.ts, with their own agents and worker.)
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "../../src/client/index.ts"
import type { Role } from "../../src/link/types.ts"
import { type AgentSimHandle, startAgentSim } from "./agent-sim-server.ts"
import { type BridgeProcess, type BridgeProcessOptions, startBridgeProcess } from "./bridge-process.ts"
import type { EmulatedChardev } from "./chardev.ts"
import { CutProxy } from "./cut-proxy.ts"
import { type FakeQmp, startFakeQmp } from "./fake-qmp.ts"
import { type RealAgent, findBinary, realAgentAvailable, startRealAgent } from "./real-agent.ts"
import { type LocalWorker, startWorker } from "./worker.ts"

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
  /** Worker port on 127.0.0.1 (0 or absent = any free port). */
  readonly port?: number
  readonly tenant?: string
  readonly vm?: string
  /** "auto": the real agent when installed, else the simulator. */
  readonly agent?: "auto" | "real" | "sim"
  /** A fake QMP monitor that follows the emulated chardev's guest port, as QEMU's VSERPORT_CHANGE. */
  readonly qmp?: boolean
  /** A cuttable TCP proxy between the bridge and the worker (`tunnelProxy`), for tunnel faults. */
  readonly tunnelProxy?: boolean
  /** The bridge's name, backoff, limits, metrics port, log level (default: "npm-start", its defaults, warn). */
  readonly bridge?: Pick<BridgeProcessOptions, "name" | "reconnect" | "limits" | "metricsPort" | "logLevel" | "nodeArgs" | "command" | "pingIntervalMs">
  /** Token lifetime, seconds (default 12 h). */
  readonly tokenTtl?: number
  /** Called with the agent as soon as it runs, before the bridge connects (to tap its chardev from the first byte). */
  readonly onAgent?: (agent: StackAgent) => void
  /** Worker options: its log lines go here (default: warnings and errors to `progress`). */
  readonly onWorkerLog?: (log: { readonly level: string; readonly message: string }) => void
  readonly progress?: (line: string) => void
}

export interface StackAgent {
  readonly kind: "real" | "sim"
  /** Where file transfers land. */
  readonly xferDir: string
  /** X display of the real agent's session (undefined for the simulator). */
  readonly display: string | undefined
  /** The emulated QEMU chardev the agent sits behind (the bridge connects to its host end). */
  readonly chardev: EmulatedChardev
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
  readonly bridge: BridgeProcess
  /** The fake QMP monitor (with `qmp: true`). */
  readonly qmp: FakeQmp | undefined
  /** The proxy the tunnel goes through (with `tunnelProxy: true`). */
  readonly tunnelProxy: CutProxy | undefined
  /** A console URL with a fresh dev token in the fragment (`role` says what the token allows; `as` what to open as). */
  consoleUrl(role: Role, opts?: { readonly as?: Role }): Promise<string>
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
    return { kind: "sim", xferDir: sim.xferDir, display: undefined, chardev: sim.chardev, setClipboard: async (t) => sim.setClipboard(t), getClipboard: async () => (await sim.getClipboard()) ?? "", real: undefined, sim }
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
    chardev: real.chardev,
    setClipboard: (t) => real.setClipboard(t),
    // UTF8_STRING: xclip's default target (STRING, Latin-1) is not what an app pasting text asks for.
    getClipboard: async () => (await real.getClipboard({ target: "UTF8_STRING" })).toString("utf8"),
    real,
    sim: undefined,
  }
}

export const startStack = async (o: StackOptions = {}): Promise<Stack> => {
  const progress = o.progress ?? (() => {})
  const tenant = o.tenant ?? "dev", vm = o.vm ?? "demo"
  const ttl = o.tokenTtl ?? 43_200
  const undo: Array<() => Promise<unknown>> = []
  const stop = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) await f().catch(() => {})
  }
  try {
    await checkPort(o.port ?? 0)
    progress("starting the worker on local workerd (Miniflare)…")
    // A fresh random signing key per run: nothing secret lives in the repository.
    const worker = await startWorker({
      port: o.port === 0 ? undefined : o.port,
      signingKey: randomBytes(32).toString("hex"),
      // The relay's info lines (clients joining and leaving) would drown the console URL: warnings and errors only.
      onLog: o.onWorkerLog ?? ((l) => (l.level === "warn" || l.level === "error" ? progress(`worker ${l.level}: ${l.message}`) : undefined)),
    })
    undo.push(() => worker.stop())
    progress(`worker listening at ${worker.url}`)

    const agent = await startAgent(o.agent ?? "auto", progress)
    undo.push(() => agent.real?.stop() ?? agent.sim!.stop())
    o.onAgent?.(agent)

    let qmp: FakeQmp | undefined
    let qmpSocket: string | undefined
    if (o.qmp === true) {
      const dir = await mkdtemp(join(tmpdir(), "vdrelay-qmp-"))
      undo.push(() => rm(dir, { recursive: true, force: true }))
      qmpSocket = join(dir, "qmp.sock")
      qmp = await startFakeQmp({ path: qmpSocket, device: "vdport", chardev: "vdagent", open: true, rateLimitMs: 1000 })
      undo.push(() => qmp!.close())
      // The emulated chardev knows when the daemon has the port open: QEMU's VSERPORT_CHANGE, through the fake monitor.
      agent.chardev.on("guest-open", () => qmp!.setGuestOpen(true))
      agent.chardev.on("guest-close", () => qmp!.setGuestOpen(false))
    }
    const tunnelProxy = o.tunnelProxy === true ? await CutProxy.start(Number(new URL(worker.url).port)) : undefined
    if (tunnelProxy !== undefined) undo.push(() => tunnelProxy.close())

    progress("starting the bridge (vdrelay bridge)…")
    const bridge = await startBridgeProcess({
      name: "npm-start",
      logLevel: "warn",
      ...o.bridge,
      mint: worker.mint,
      tenant,
      edgeBase: tunnelProxy === undefined ? worker.wsUrl : `ws://127.0.0.1:${tunnelProxy.port}`,
      vms: [{ id: vm, chardev: agent.chardev.hostPath, ...(qmpSocket === undefined ? {} : { qmp: { socket: qmpSocket, device: "vdport" } }) }],
      tokenTtl: ttl,
    })
    undo.push(() => bridge.stop())
    if (o.bridge?.metricsPort !== undefined) await bridge.metricsListening()

    await waitForAgent(worker, tenant, vm, bridge)
    progress(`agent connected through the bridge; files sent from the console land in ${agent.xferDir}`)

    return {
      url: worker.url,
      tenant,
      vm,
      worker,
      agent,
      bridge,
      qmp,
      tunnelProxy,
      consoleUrl: async (role, opts = {}) => {
        const token = await worker.mint({ tenant, vm, role, ttl })
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
const waitForAgent = async (worker: LocalWorker, tenant: string, vm: string, bridge: BridgeProcess, timeoutMs = 60_000): Promise<void> => {
  const token = await worker.mint({ tenant, vm, role: "viewer" })
  const session = await connect({ url: `${worker.wsUrl}/v1/vms/${vm}/console`, token, role: "viewer", clientName: "stack-probe", reconnect: false })
  try {
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new StackError("StartFailed", `the agent did not connect within ${timeoutMs / 1000} s; bridge log:\n${bridge.log.text || "(empty)"}`, "check the bridge log above")), timeoutMs)
      const done = (): void => (clearTimeout(timer), ok())
      if (session.agent.connected) return done()
      session.on("agent", (a) => a.connected && done())
      void bridge.managed.exited.then(({ code }) => {
        clearTimeout(timer)
        fail(new StackError("StartFailed", `the bridge exited (${code}):\n${bridge.log.text}`, "see the bridge's message above"))
      })
    })
  } finally {
    await session.close()
  }
}
