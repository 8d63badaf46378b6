// The bridge program: for every configured VM a core and three supervised sessions (chardev, tunnel, QMP), plus the
// metrics and health endpoint; everything lives in one Scope, so interrupting it closes every socket through its
// finalizer. Each VM's sessions run in their own fiber (a FiberMap keyed by VM id), so a reload starts, stops or
// restarts one VM without touching the others, and a VM whose entry or token is bad is marked failed while the others
// run.
import { access, constants } from "node:fs/promises"
import http from "node:http"
import { Effect, FiberMap, Schedule, type Scope } from "effect"
import { chardevSession } from "./chardev.ts"
import type { BridgeConfig, VmConfig, VmFailure } from "./config.ts"
import { BridgeError, describeCause } from "./errors.ts"
import { type Health, healthOf, type VmStatus } from "./health.ts"
import { runLibvirt } from "./libvirt.ts"
import { type Logger, withFields } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import { qmpSession } from "./qmp.ts"
import { type CurrentVm, hostChanges, planReload } from "./reload.ts"
import { supervise } from "./supervise.ts"
import { tunnelSession } from "./tunnel.ts"
import { VmCore } from "./vm-core.ts"

const runVm = (config: BridgeConfig, vm: VmConfig, log: Logger, metrics: Metrics): Effect.Effect<never> => {
  const vmLog = withFields(log, { vm: vm.id })
  const core = new VmCore(vm.id, config.bridge, config.limits, vmLog, metrics)
  if (vm.qmp === undefined) vmLog.log("info", "no-qmp", { cause: "guest port state unknown: writes are not gated on it" })
  const tunnelOpts = { linkBufferBytes: config.limits.linkBufferBytes, pingIntervalMs: config.pingIntervalMs, welcomeTimeoutMs: 15_000 }
  const chardevBackoff = { baseMs: Math.min(config.reconnect.baseMs, 100), capMs: Math.min(config.reconnect.capMs, 5_000) }
  const loops: Array<Effect.Effect<never>> = [
    supervise("chardev", chardevSession(vm.chardev, core), chardevBackoff, withFields(vmLog, { endpoint: "chardev" })),
    supervise("tunnel", tunnelSession(vm, core, vmLog, tunnelOpts), config.reconnect, vmLog),
  ]
  if (vm.qmp !== undefined) loops.push(supervise("qmp", qmpSession(vm.qmp, core, vmLog, metrics), chardevBackoff, vmLog))
  return Effect.all(loops, { concurrency: "unbounded" }).pipe(Effect.andThen(Effect.never))
}

/** Serves GET /metrics (Prometheus text) and, given `health`, GET /healthz on 127.0.0.1:port (port 0 picks one; the bound port is logged). */
export const serveMetrics = (port: number, metrics: Metrics, log: Logger, health?: () => Health): Effect.Effect<number, BridgeError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<http.Server, BridgeError>((resume) => {
      const server = http.createServer((req, res) => {
        if (req.method === "GET" && (req.url === "/metrics" || req.url === "/")) {
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
          res.end(metrics.render())
        } else if (req.method === "GET" && req.url === "/healthz" && health !== undefined) {
          const h = health()
          res.writeHead(h.status === "ok" ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" })
          res.end(`${JSON.stringify(h)}\n`)
        } else {
          res.writeHead(404).end()
        }
      })
      server.once("error", (e) => resume(Effect.fail(new BridgeError({ reason: "MetricsUnavailable", detail: `127.0.0.1:${port}: ${describeCause(e)}` }))))
      server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      }),
  ).pipe(
    Effect.map((server) => (server.address() as { port: number }).port),
    Effect.tap((bound) => Effect.sync(() => log.log("info", "metrics-listening", { address: `127.0.0.1:${bound}` }))),
  )

/** How often a VM waiting for its token file looks again (besides every reload). */
export const TOKEN_POLL_MS = 5_000

/** What a reload did, by VM id. */
export interface ReloadSummary {
  readonly started: ReadonlyArray<string>
  readonly restarted: ReadonlyArray<string>
  readonly stopped: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
  readonly failed: ReadonlyArray<string>
}

export interface BridgeHost {
  /** Applies a config read again: starts, stops and restarts VMs as planReload says; unchanged VMs are not touched. */
  readonly reload: (next: BridgeConfig) => Effect.Effect<ReloadSummary>
  /** The config read again is unusable as a whole: keep everything running, report the error (health, STATUS=). */
  readonly reject: (key: string, detail: string) => Effect.Effect<void>
  readonly health: () => Health
  /** One line for systemd's STATUS=: VMs up, connecting and failed, and a rejected reload. */
  readonly status: () => string
}

/** Why the VM's token file cannot be read, or undefined when it can (its contents are the tunnel's to read). */
const tokenProblem = (vm: VmConfig): Promise<string | undefined> =>
  access(vm.tokenFile, constants.R_OK).then(
    () => undefined,
    (e: NodeJS.ErrnoException) => `cannot read ${vm.tokenFile}: ${e.code ?? e.message}`,
  )

/**
 * Starts the bridge: the metrics/health endpoint (if configured), then every VM of `config`: a valid entry with a
 * readable token file runs; a bad entry, or an unreadable token file, is marked failed (`vm-failed`,
 * `vdrelay_bridge_vm_failed`) while the others run. A VM waiting for its token file starts once the file is readable
 * (looked at every TOKEN_POLL_MS and at every reload). Returns once every VM's fiber is started (not connected).
 * Fails only if the metrics port cannot be bound.
 */
export const startBridge = (initial: BridgeConfig, log: Logger, metrics: Metrics): Effect.Effect<BridgeHost, BridgeError, Scope.Scope> =>
  Effect.gen(function* () {
    let config = initial
    let reloadError: { key: string; detail: string } | undefined
    /** Every VM the bridge knows: running (maybe waiting for its token) or failed. */
    const statuses = new Map<string, VmStatus>()
    /** The settings each VM with a valid entry runs (or waits) with. */
    const settings = new Map<string, VmConfig>()
    const fibers = yield* FiberMap.make<string>()
    const health = (): Health => healthOf(config.bridge, statuses, metrics, reloadError)
    if (config.metricsPort !== undefined) yield* serveMetrics(config.metricsPort, metrics, log, health)

    const fail = (id: string, key: string, detail: string): void => {
      statuses.set(id, { phase: "failed", key, detail })
      metrics.set("vdrelay_bridge_vm_failed", { vm: id }, 1)
      log.log("warn", "vm-failed", { vm: id, key, cause: detail })
    }
    const running = (id: string, cause: string): void => {
      statuses.set(id, { phase: "running" })
      metrics.set("vdrelay_bridge_vm_failed", { vm: id }, 0)
      log.log("info", "vm-started", { vm: id, cause })
    }
    const failEntry = (f: VmFailure): void => fail(f.vm, f.key, f.detail)

    /** Forks the VM's sessions (after its token file is readable), replacing any fiber it had. */
    const launch = (vm: VmConfig, host: BridgeConfig, cause: string): Effect.Effect<void> =>
      Effect.gen(function* () {
        settings.set(vm.id, vm)
        const problem = yield* Effect.promise(() => tokenProblem(vm))
        let body: Effect.Effect<never> = Effect.sync(() => running(vm.id, cause)).pipe(Effect.andThen(runVm(host, vm, log, metrics)))
        if (problem !== undefined) {
          fail(vm.id, `${vm.at}.tokenFile`, problem)
          const readable = Effect.promise(() => tokenProblem(vm)).pipe(Effect.repeat({ schedule: Schedule.spaced(TOKEN_POLL_MS), until: (p) => p === undefined }))
          body = readable.pipe(Effect.andThen(Effect.sync(() => running(vm.id, "token file readable"))), Effect.andThen(runVm(host, vm, log, metrics)))
        }
        yield* FiberMap.run(fibers, vm.id, body)
      })

    /**
     * Interrupts the VM's sessions (their finalizers close the tunnel with 1001 and the sockets). `forget`: its series
     * go too (it left the config); else its counters continue across the restart and only its gauges read "down".
     */
    const halt = (id: string, forget: boolean): Effect.Effect<void> =>
      FiberMap.remove(fibers, id).pipe(
        Effect.andThen(
          Effect.sync(() => {
            if (forget) return metrics.dropVm(id)
            for (const gauge of ["vdrelay_bridge_tunnel_up", "vdrelay_bridge_chardev_up"] as const) metrics.set(gauge, { vm: id }, 0)
          }),
        ),
      )

    for (const f of config.failed) failEntry(f)
    for (const vm of config.vms) yield* launch(vm, config, "config")
    // VMs of libvirt domains (libvirt.ts): followed for the bridge's lifetime; a reload does not change the section.
    if (config.libvirt !== undefined) yield* Effect.forkScoped(runLibvirt(config, config.libvirt, log, metrics))
    log.log("info", "bridge-started", { bridge: config.bridge, vms: statuses.size, failed: [...statuses.values()].filter((s) => s.phase === "failed").length })
    yield* Effect.addFinalizer(() => Effect.sync(() => log.log("info", "bridge-stopped", { bridge: config.bridge })))

    const reload = (next: BridgeConfig): Effect.Effect<ReloadSummary> =>
      Effect.gen(function* () {
        const current = new Map<string, CurrentVm>([...statuses].map(([id, s]) => [id, { config: settings.get(id), failed: s.phase === "failed" }]))
        const hostChanged = hostChanges(config, next)
        const summary = { started: [] as Array<string>, restarted: [] as Array<string>, stopped: [] as Array<string>, unchanged: [] as Array<string>, failed: [] as Array<string> }
        for (const action of planReload(current, next, hostChanged)) {
          switch (action.kind) {
            case "keep":
              statuses.set(action.id, { phase: "running" })
              summary.unchanged.push(action.id)
              break
            case "keep-rejected":
              statuses.set(action.id, { phase: "running", configError: { key: action.failure.key, detail: action.failure.detail } })
              log.log("warn", "vm-entry-rejected", { vm: action.id, key: action.failure.key, cause: `${action.failure.detail} (runs on as before)` })
              summary.failed.push(action.id)
              break
            case "fail":
              yield* halt(action.failure.vm, true)
              settings.delete(action.failure.vm)
              failEntry(action.failure)
              summary.failed.push(action.failure.vm)
              break
            case "stop":
              yield* halt(action.id, true)
              statuses.delete(action.id)
              settings.delete(action.id)
              log.log("info", "vm-stopped", { vm: action.id, cause: "removed from the config" })
              summary.stopped.push(action.id)
              break
            case "restart":
              yield* halt(action.vm.id, false)
              log.log("info", "vm-stopped", { vm: action.vm.id, cause: `changed: ${action.changed.join(", ")}` })
              yield* launch(action.vm, next, "reload")
              summary.restarted.push(action.vm.id)
              break
            case "start": {
              const wasFailed = statuses.get(action.vm.id)?.phase === "failed"
              yield* halt(action.vm.id, false)
              yield* launch(action.vm, next, wasFailed ? "retried on reload" : "added")
              summary.started.push(action.vm.id)
              break
            }
          }
        }
        const ignored = next.metricsPort !== config.metricsPort ? "metricsPort (takes a restart)" : undefined
        // A VM whose entry was rejected keeps its old settings; the rest of the host runs on the new config.
        config = next
        reloadError = undefined
        metrics.inc("vdrelay_bridge_reloads_total", { result: "ok" })
        log.log("info", "reload", {
          started: summary.started.join(" "),
          restarted: summary.restarted.join(" "),
          stopped: summary.stopped.join(" "),
          unchanged: summary.unchanged.join(" "),
          failed: summary.failed.join(" "),
          ignored,
        })
        return summary
      })

    const reject = (key: string, detail: string): Effect.Effect<void> =>
      Effect.sync(() => {
        reloadError = { key, detail }
        metrics.inc("vdrelay_bridge_reloads_total", { result: "rejected" })
        log.log("error", "reload-rejected", { key, cause: `${detail} (the running VMs are kept as they are)` })
      })

    const status = (): string => {
      const h = health()
      const count = (state: string): number => Object.values(h.vms).filter((v) => v.state === state).length
      const line = `${count("up")} up, ${count("connecting")} connecting, ${count("failed")} failed of ${Object.keys(h.vms).length} VMs`
      return reloadError === undefined ? line : `${line}; reload rejected: ${reloadError.key}: ${reloadError.detail}`
    }

    return { reload, reject, health, status }
  })

/** Runs until interrupted, without reloads (tests and embedders). Fails only if the metrics port cannot be bound. */
export const runBridge = (config: BridgeConfig, log: Logger, metrics: Metrics): Effect.Effect<never, BridgeError, Scope.Scope> =>
  startBridge(config, log, metrics).pipe(Effect.andThen(Effect.never))
