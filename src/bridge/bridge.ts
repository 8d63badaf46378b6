// The bridge program: for every configured VM a core and three supervised sessions (chardev, tunnel, QMP), plus the
// metrics endpoint; everything lives in one Scope, so interrupting it closes every socket through its finalizer.
import http from "node:http"
import { Effect, type Scope } from "effect"
import { chardevSession } from "./chardev.ts"
import type { BridgeConfig, VmConfig } from "./config.ts"
import { BridgeError, describeCause } from "./errors.ts"
import { type Logger, withFields } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import { qmpSession } from "./qmp.ts"
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

/** Serves GET /metrics on 127.0.0.1:port (port 0 picks one; the bound port is logged). */
export const serveMetrics = (port: number, metrics: Metrics, log: Logger): Effect.Effect<number, BridgeError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<http.Server, BridgeError>((resume) => {
      const server = http.createServer((req, res) => {
        if (req.method === "GET" && (req.url === "/metrics" || req.url === "/")) {
          res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
          res.end(metrics.render())
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

/** Runs until interrupted. Fails only if the metrics port cannot be bound. */
export const runBridge = (config: BridgeConfig, log: Logger, metrics: Metrics): Effect.Effect<never, BridgeError, Scope.Scope> =>
  Effect.gen(function* () {
    if (config.metricsPort !== undefined) yield* serveMetrics(config.metricsPort, metrics, log)
    log.log("info", "bridge-started", { bridge: config.bridge, vms: config.vms.length })
    yield* Effect.addFinalizer(() => Effect.sync(() => log.log("info", "bridge-stopped", { bridge: config.bridge })))
    return yield* Effect.all(
      config.vms.map((vm) => runVm(config, vm, log, metrics)),
      { concurrency: "unbounded" },
    ).pipe(Effect.andThen(Effect.never))
  })
