// `vdrelay bridge`: reads the config, runs the bridge until SIGINT/SIGTERM, then closes every tunnel and socket and
// exits 0; SIGHUP reads the config again and applies it VM by VM. Exit 2 for usage errors and a config that is
// unusable as a whole (with the offending key); a bad VM entry or token only marks that VM failed. Exit 1 if the
// bridge cannot start. Under systemd (Type=notify) it reports READY=1, RELOADING=1, STATUS= and watchdog pings.
import { readFile } from "node:fs/promises"
import { hostname } from "node:os"
import { parseArgs } from "node:util"
// The module, not the package index: the index loads the cluster, RPC and SQL modules a bridge never uses.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Exit, Queue, Schedule } from "effect"
import { type BridgeHost, startBridge } from "./bridge.ts"
import { checkConfig } from "./check.ts"
import { type BridgeConfig, ConfigError, parseConfig } from "./config.ts"
import { jsonLogger, type Logger, type LogLevel } from "./log.ts"
import { Metrics } from "./metrics.ts"
import { monotonicUsec, type Notifier, systemdNotifier } from "./notify.ts"

const HELP = `usage: vdrelay bridge --config FILE [--metrics-port PORT] [--log-level LEVEL]
       vdrelay bridge --check [--ignore-vm-errors] --config FILE

Runs the host bridge: for every VM in the config, connects to the VM's vdagent chardev socket (QEMU
-chardev socket,server=on) and streams it to the VM's relay Durable Object over an outbound WebSocket,
resuming after drops without losing or duplicating a byte.

options:
  --config FILE         JSON config (required). Keys:
                          bridge        name reported to the relay (default: the host name)
                          edge          tunnel URL template, "{vm}" is replaced by the VM id,
                                        e.g. "wss://relay.example.com/v1/vms/{vm}/agent"
                          tokenFile     file holding the VM's bridge token (vdrelay token --role bridge);
                                        "{vm}" is replaced by the VM id; re-read at every connect,
                                        so it can be rotated in place
                          metricsPort   serve Prometheus metrics on 127.0.0.1:PORT/metrics and the
                                        VMs' state on 127.0.0.1:PORT/healthz (200 all up, 503 otherwise)
                          limits        { retainBytes, maxGuestMessageBytes, guestBufferBytes,
                                          linkBufferBytes, frameBytes } (bytes)
                          reconnect     { baseMs, capMs }: tunnel backoff (exponential, jittered)
                          pingIntervalMs  tunnel liveness ping (default 20000)
                          vms           [{ id, chardev, qmp?, edge?, tokenFile? }, ...]
                            chardev     "/path/to/socket" (or "unix:PATH") or "host:port" (or "tcp:HOST:PORT")
                            qmp         { socket, device, chardev? }: a QMP monitor socket, the virtserialport
                                        device id (VSERPORT_CHANGE names it) and optionally its chardev id
                                        (else found with qom-get). Without qmp the bridge cannot tell
                                        whether the guest has the port open (see docs/operations.md).
                            edge, tokenFile  per-VM overrides of the top-level keys
  --metrics-port PORT   overrides metricsPort (0 picks a free port; the chosen one is logged)
  --log-level LEVEL     debug | info | warn | error (default info); JSON lines on stderr
  --check               validate the config and every VM's token file (a bridge token for that VM, not expired;
                        signatures are the relay's to check), print what would run, and exit: 0 if all is well,
                        2 listing every problem. Opens no socket.
  --ignore-vm-errors    with --check: list per-VM problems but exit 0 unless the config as a whole is unusable
                        (what the service runs before a start or reload: one VM's problem stops no other VM)
  -h, --help            this text

Per-VM and global errors: a bad vms[] entry (chardev, qmp, id, per-VM edge or tokenFile, a duplicate id) or an
unreadable token file marks that VM failed (log event vm-failed, metric vdrelay_bridge_vm_failed) while the others
run; it is tried again at every reload, and a VM waiting for its token file starts once the file is readable. An
unreadable or unparseable file, an unknown top-level key, no vms, or a bad top-level edge, tokenFile, limits,
reconnect, pingIntervalMs or metricsPort is global: exit 2 at start, and a reload that reads one keeps running as is.

Signals: SIGINT and SIGTERM close every tunnel (close 1001) and socket, then exit 0. SIGHUP (systemctl reload) reads
the config again: new VMs start, removed ones stop, changed ones (chardev, qmp, edge, tokenFile path) restart alone,
unchanged ones are not touched; a token file's contents need no reload (read at every connect).
systemd: with $NOTIFY_SOCKET set (Type=notify) it sends READY=1 once the config is loaded and every VM's sessions are
started (not yet connected), RELOADING=1 and READY=1 around a reload, STATUS= lines, and WATCHDOG=1 every half
$WATCHDOG_USEC from the event loop. Messages go through systemd-notify (NotifyAccess=all).
Exit status: 0 after a signal, 2 for a usage or global config error, 1 if the bridge cannot start.
`

const LEVELS: ReadonlyArray<LogLevel> = ["debug", "info", "warn", "error"]

const usage = (message: string): number => {
  process.stderr.write(`vdrelay bridge: ${message}\nRun 'vdrelay bridge --help' for the options.\n`)
  return 2
}

const loadConfig = async (file: string, metricsPort: string | undefined): Promise<BridgeConfig> => {
  let text: string
  try {
    text = await readFile(file, "utf8")
  } catch (e) {
    throw new ConfigError("--config", `cannot read ${file}: ${(e as Error).message}`)
  }
  let config = parseConfig(text, hostname())
  if (metricsPort !== undefined) {
    const port = Number(metricsPort)
    if (!/^\d+$/.test(metricsPort) || port > 65535) throw new ConfigError("--metrics-port", `"${metricsPort}" is not a port number`)
    config = { ...config, metricsPort: port }
  }
  return config
}

export const main = async (args: ReadonlyArray<string>): Promise<number> => {
  let values: { config?: string; "metrics-port"?: string; "log-level"?: string; check?: boolean; "ignore-vm-errors"?: boolean; help?: boolean }
  try {
    values = parseArgs({
      args: [...args],
      options: {
        config: { type: "string" },
        "metrics-port": { type: "string" },
        "log-level": { type: "string" },
        check: { type: "boolean" },
        "ignore-vm-errors": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (e) {
    return usage((e as Error).message)
  }
  if (values.help) {
    process.stdout.write(HELP)
    return 0
  }
  if (values.config === undefined) return usage("--config FILE is required")
  const level = (values["log-level"] ?? "info") as LogLevel
  if (!LEVELS.includes(level)) return usage(`--log-level must be one of ${LEVELS.join(", ")}`)
  if (values["ignore-vm-errors"] === true && values.check !== true) return usage("--ignore-vm-errors goes with --check")
  const file = values.config
  let config: BridgeConfig
  try {
    config = await loadConfig(file, values["metrics-port"])
  } catch (e) {
    if (e instanceof ConfigError) return usage(`config error at ${e.key}: ${e.detail}`)
    throw e
  }
  if (values.check === true) {
    const { lines, problems } = await checkConfig(config)
    process.stdout.write(`${lines.join("\n")}\n`)
    const tolerate = values["ignore-vm-errors"] === true
    for (const [key, detail] of problems) process.stderr.write(`vdrelay bridge: ${tolerate ? "VM problem" : "config error"} at ${key}: ${detail}\n`)
    if (problems.length === 0) process.stdout.write("config ok\n")
    else if (tolerate) process.stdout.write(`config usable: ${problems.length} VM problem${problems.length === 1 ? "" : "s"} (the other VMs run)\n`)
    return problems.length === 0 || tolerate ? 0 : 2
  }
  const log = jsonLogger((line) => process.stderr.write(line), level)
  const reread = (): Promise<BridgeConfig> => loadConfig(file, values["metrics-port"])
  return runUntilSignal(config, reread, log)
}

/** Reads the config again on each SIGHUP and applies it; a global error keeps the running set and is reported. */
const reloadOnHangup = (host: BridgeHost, hangups: Queue.Dequeue<void>, reread: () => Promise<BridgeConfig>, notifier: Notifier, log: Logger): Effect.Effect<never> =>
  Effect.forever(
    Effect.gen(function* () {
      yield* Queue.take(hangups)
      // systemd ≥ 253 (Type=notify-reload) wants MONOTONIC_USEC with RELOADING=1; 252 ignores the field.
      yield* Effect.promise(() => notifier.send([["RELOADING", "1"], ["MONOTONIC_USEC", String(monotonicUsec())], ["STATUS", "reloading the config"]]))
      const next = yield* Effect.either(Effect.tryPromise({ try: reread, catch: (e) => e }))
      if (next._tag === "Left") {
        const e = next.left
        yield* host.reject(e instanceof ConfigError ? e.key : "(file)", e instanceof ConfigError ? e.detail : String(e))
      } else yield* host.reload(next.right)
      yield* Effect.promise(() => notifier.send([["READY", "1"], ["STATUS", host.status()]]))
    }).pipe(Effect.catchAllDefect((d) => Effect.sync(() => log.log("error", "reload-rejected", { key: "(bridge)", cause: String(d) })))),
  )

/** WATCHDOG=1 every half $WATCHDOG_USEC (from the event loop: a stuck loop misses it and systemd restarts the unit), and STATUS= when it changed. */
const keepNotifying = (host: BridgeHost, notifier: Notifier): Effect.Effect<void> => {
  if (!notifier.enabled) return Effect.void
  let last = host.status()
  const tick = Effect.promise(() => {
    const status = host.status()
    const fields: Array<readonly [string, string]> = notifier.watchdogMs === undefined ? [] : [["WATCHDOG", "1"]]
    if (status !== last) fields.push(["STATUS", status])
    last = status
    return fields.length === 0 ? Promise.resolve() : notifier.send(fields)
  })
  return tick.pipe(Effect.repeat(Schedule.spaced(notifier.watchdogMs ?? 10_000)), Effect.asVoid)
}

/**
 * Runs the bridge under the platform's `NodeRuntime.runMain`: SIGINT/SIGTERM interrupt it (every scope closes, each
 * tunnel with 1001), and its teardown sets the exit status (0 after a signal, 1 if the bridge failed). The promise
 * settles with that status for the launcher; after a signal or a failure runMain has the process exit with it.
 */
const runUntilSignal = (config: BridgeConfig, reread: () => Promise<BridgeConfig>, log: Logger): Promise<number> =>
  new Promise((settle) => {
    const notifier = systemdNotifier(log)
    const program = Effect.scoped(
      Effect.gen(function* () {
        // Before anything else: Node's default for SIGHUP is to exit, and a reload may come as soon as systemd forks us.
        // Signals during a reload (or the start) fold into one more reload after it: the file is read then.
        const hangups = yield* Queue.sliding<void>(1)
        const onHangup = (): void => void Queue.unsafeOffer(hangups, undefined)
        yield* Effect.acquireRelease(
          Effect.sync(() => process.on("SIGHUP", onHangup)),
          () => Effect.sync(() => process.off("SIGHUP", onHangup)),
        )
        const host = yield* startBridge(config, log, new Metrics())
        // Ready: the config is loaded, the metrics/health endpoint listens, every VM's sessions are started or the VM
        // is marked failed. Not "connected": a relay outage must not fail the unit's start.
        yield* Effect.promise(() => notifier.send([["READY", "1"], ["STATUS", host.status()]]))
        yield* Effect.forkScoped(keepNotifying(host, notifier))
        return yield* reloadOnHangup(host, hangups, reread, notifier, log)
      }).pipe(
        Effect.onInterrupt(() =>
          Effect.sync(() => log.log("info", "signal", { cause: "SIGINT or SIGTERM" })).pipe(
            Effect.andThen(Effect.promise(() => notifier.send([["STOPPING", "1"], ["STATUS", "closing every tunnel"]]))),
          ),
        ),
      ),
    )
    NodeRuntime.runMain(program, {
      // Our JSON log reports the failure; Effect's own logger would add a second, differently formatted line.
      disableErrorReporting: true,
      disablePrettyLogger: true,
      teardown: (exit, onExit) => {
        const code = Exit.isInterrupted(exit) ? 0 : 1
        if (code !== 0) log.log("error", "bridge-failed", { cause: Exit.isFailure(exit) ? String(exit.cause) : "ended" })
        settle(code)
        onExit(code)
      },
    })
  })
