// `vdrelay bridge` as its own process, as deployed: a config and one bridge token per VM written to a fresh folder,
// bin/vdrelay.mjs spawned as the leader of its own process group, and its JSON log lines and Prometheus metrics read
// back. The one place that launches the bridge for npm start, the end-to-end tests, chaos and the benchmarks.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import type { MintRequest } from "../../src/auth/token.ts"
import { type LogLines, type Managed, spawnGroup } from "./processes.ts"

const ROOT = resolve(import.meta.dirname, "../..")

export interface BridgeVm {
  readonly id: string
  /** The VM's chardev socket (UNIX path, or host:port). */
  readonly chardev: string
  /** The VM's QMP monitor and the virtserialport's device id (a fake QMP in tests). */
  readonly qmp?: { readonly socket: string; readonly device: string }
}

export interface BridgeProcessOptions {
  /** Mints the bridge tokens (a LocalWorker's `mint`). */
  readonly mint: (claims: MintRequest) => Promise<string>
  readonly tenant: string
  /** ws(s)://HOST:PORT the tunnels go to (the worker, or a proxy in front of it); "/v1/vms/{vm}/agent" is appended. */
  readonly edgeBase: string
  readonly vms: ReadonlyArray<BridgeVm>
  /** The bridge's name reported to the relay (default "test-host"). */
  readonly name?: string
  /** Tunnel backoff (the bridge's default when absent). */
  readonly reconnect?: { readonly baseMs: number; readonly capMs: number }
  readonly limits?: Readonly<Record<string, number>>
  /** --metrics-port (0: any free port, logged as `metrics-listening`); no metrics endpoint when absent. */
  readonly metricsPort?: number
  readonly logLevel?: "debug" | "info" | "warn" | "error"
  /** Extra node flags for the bridge process (e.g. --cpu-prof). */
  readonly nodeArgs?: ReadonlyArray<string>
  /** The `vdrelay` command to run (e.g. ["/usr/bin/vdrelay"] of the installed .deb); default this node on bin/vdrelay.mjs. */
  readonly command?: ReadonlyArray<string>
  /** Bridge token lifetime, seconds (default 24 h). */
  readonly tokenTtl?: number
  /** The tunnel heartbeat interval, ms (the bridge's default, 20 s, when absent). */
  readonly pingIntervalMs?: number
}

export interface BridgeProcess {
  /** The folder holding bridge.json and the tokens (removed by stop()). */
  readonly dir: string
  /** The running process (a new one after restart()). */
  readonly managed: Managed
  /** Its pid (changes with restart()). */
  readonly pid: number
  /** Its log, continued across restarts. */
  readonly log: LogLines
  /** The JSON log events so far (lines that are not JSON objects are skipped). */
  events(): Array<Record<string, unknown>>
  /** The bridge's current metrics page ("" while it has none). */
  metricsText(): Promise<string>
  /** The value of `name{<labels>vm="<vm>"}` (0 when absent; `labels` like 'reason="tunnel-lost",'). */
  metric(name: string, vm: string, labels?: string): Promise<number>
  /** Resolves once the metrics endpoint listens (needs `metricsPort`). */
  metricsListening(timeoutMs?: number): Promise<void>
  /** Stops the process and starts it again on the same config (the host's bridge service restarting). */
  restart(): Promise<void>
  /** SIGTERM to the group (SIGKILL after `graceMs`), the folder removed; resolves with how the bridge exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const parseEvents = (lines: ReadonlyArray<string>): Array<Record<string, unknown>> =>
  lines.flatMap((l) => {
    if (!l.startsWith("{")) return []
    try {
      return [JSON.parse(l) as Record<string, unknown>]
    } catch {
      return []
    }
  })

export const startBridgeProcess = async (o: BridgeProcessOptions): Promise<BridgeProcess> => {
  const dir = await mkdtemp(join(tmpdir(), "vdrelay-bridge-"))
  for (const vm of o.vms) {
    const file = join(dir, `${vm.id}.token`)
    await writeFile(file, `${await o.mint({ tenant: o.tenant, vm: vm.id, role: "bridge", ttl: o.tokenTtl ?? 24 * 3600 })}\n`, { mode: 0o600 })
    await chmod(file, 0o600)
  }
  const config = {
    bridge: o.name ?? "test-host",
    edge: `${o.edgeBase}/v1/vms/{vm}/agent`,
    tokenFile: join(dir, "{vm}.token"),
    ...(o.reconnect === undefined ? {} : { reconnect: o.reconnect }),
    ...(o.limits === undefined ? {} : { limits: o.limits }),
    ...(o.pingIntervalMs === undefined ? {} : { pingIntervalMs: o.pingIntervalMs }),
    vms: o.vms.map((v) => ({ id: v.id, chardev: v.chardev, ...(v.qmp === undefined ? {} : { qmp: v.qmp }) })),
  }
  await writeFile(join(dir, "bridge.json"), JSON.stringify(config, null, 2))
  const [file, ...prefix] = o.command ?? [process.execPath, ...(o.nodeArgs ?? []), join(ROOT, "bin/vdrelay.mjs")]
  const args = [
    ...prefix,
    "bridge",
    "--config",
    join(dir, "bridge.json"),
    ...(o.metricsPort === undefined ? [] : ["--metrics-port", String(o.metricsPort)]),
    "--log-level",
    o.logLevel ?? "info",
  ]
  const spawn = (log?: LogLines): Managed => spawnGroup("bridge", file!, args, { cwd: ROOT, ...(log === undefined ? {} : { log }) })
  let managed = spawn()
  const events = (): Array<Record<string, unknown>> => parseEvents(managed.log.lines)
  // The newest endpoint: a restarted bridge listens on another port.
  const metricsAddress = (): string | undefined => events().findLast((e) => e.event === "metrics-listening")?.address as string | undefined
  const metricsText = async (): Promise<string> => {
    const address = metricsAddress()
    return address === undefined ? "" : await fetch(`http://${address}/metrics`).then((r) => r.text()).catch(() => "")
  }
  return {
    dir,
    get managed() {
      return managed
    },
    get pid() {
      return managed.pid
    },
    get log() {
      return managed.log
    },
    events,
    metricsText,
    metric: async (name, vm, labels = "") => {
      const m = new RegExp(`^${name}\\{${labels}vm="${vm}"\\} (-?\\d+)$`, "m").exec(await metricsText())
      return m === null ? 0 : Number(m[1])
    },
    metricsListening: async (timeoutMs = 60_000) => {
      await managed.log.waitFor(/"event":"metrics-listening"/, { from: 0, timeoutMs })
    },
    restart: async () => {
      const from = managed.log.mark()
      await managed.stop(3000)
      managed = spawn(managed.log)
      if (o.metricsPort !== undefined) await managed.log.waitFor(/"event":"metrics-listening"/, { from, timeoutMs: 60_000 })
    },
    stop: async (graceMs = 5000) => {
      await managed.stop(graceMs)
      await rm(dir, { recursive: true, force: true })
      return managed.exited
    },
  }
}
