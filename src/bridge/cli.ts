// `vdrelay bridge`: reads the config, runs the bridge until SIGINT/SIGTERM, then closes every tunnel and socket and
// exits 0. Exit 2 for usage and config errors (with the offending key), 1 if the bridge cannot start.
import { access, constants, readFile } from "node:fs/promises"
import { hostname } from "node:os"
import { parseArgs } from "node:util"
// The module, not the package index: the index loads the cluster, RPC and SQL modules a bridge never uses.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Exit } from "effect"
import { runBridge } from "./bridge.ts"
import { checkConfig } from "./check.ts"
import { type BridgeConfig, ConfigError, parseConfig } from "./config.ts"
import { jsonLogger, type Logger, type LogLevel } from "./log.ts"
import { Metrics } from "./metrics.ts"

const HELP = `usage: vdrelay bridge --config FILE [--metrics-port PORT] [--log-level LEVEL]
       vdrelay bridge --check --config FILE

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
                          metricsPort   serve Prometheus metrics on 127.0.0.1:PORT/metrics
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
  -h, --help            this text

Signals: SIGINT and SIGTERM close every tunnel (close 1001) and socket, then exit 0.
Exit status: 0 after a signal, 2 for a usage or config error, 1 if the bridge cannot start.
`

const LEVELS: ReadonlyArray<LogLevel> = ["debug", "info", "warn", "error"]

const usage = (message: string): number => {
  process.stderr.write(`vdrelay bridge: ${message}\nRun 'vdrelay bridge --help' for the options.\n`)
  return 2
}

const loadConfig = async (file: string, metricsPort: string | undefined, checking: boolean): Promise<BridgeConfig> => {
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
  // A token file that cannot be read is a deployment error: say so now rather than retry forever. (--check reports
  // every token problem itself.)
  if (!checking) for (const [i, vm] of config.vms.entries()) {
    try {
      await access(vm.tokenFile, constants.R_OK)
    } catch (e) {
      throw new ConfigError(`vms[${i}].tokenFile`, `cannot read ${vm.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
  }
  return config
}

export const main = async (args: ReadonlyArray<string>): Promise<number> => {
  let values: { config?: string; "metrics-port"?: string; "log-level"?: string; check?: boolean; help?: boolean }
  try {
    values = parseArgs({
      args: [...args],
      options: { config: { type: "string" }, "metrics-port": { type: "string" }, "log-level": { type: "string" }, check: { type: "boolean" }, help: { type: "boolean", short: "h" } },
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
  let config: BridgeConfig
  try {
    config = await loadConfig(values.config, values["metrics-port"], values.check === true)
  } catch (e) {
    if (e instanceof ConfigError) return usage(`config error at ${e.key}: ${e.detail}`)
    throw e
  }
  if (values.check === true) {
    const { lines, problems } = await checkConfig(config)
    process.stdout.write(`${lines.join("\n")}\n`)
    for (const [key, detail] of problems) process.stderr.write(`vdrelay bridge: config error at ${key}: ${detail}\n`)
    if (problems.length === 0) process.stdout.write("config ok\n")
    return problems.length === 0 ? 0 : 2
  }
  const log = jsonLogger((line) => process.stderr.write(line), level)
  return runUntilSignal(config, log)
}

/**
 * Runs the bridge under the platform's `NodeRuntime.runMain`: SIGINT/SIGTERM interrupt it (every scope closes, each
 * tunnel with 1001), and its teardown sets the exit status (0 after a signal, 1 if the bridge failed). The promise
 * settles with that status for the launcher; after a signal or a failure runMain has the process exit with it.
 */
const runUntilSignal = (config: BridgeConfig, log: Logger): Promise<number> =>
  new Promise((settle) => {
    const program = Effect.scoped(
      runBridge(config, log, new Metrics()).pipe(Effect.onInterrupt(() => Effect.sync(() => log.log("info", "signal", { cause: "SIGINT or SIGTERM" })))),
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
