// `npm start`: the whole stack on this machine (worker on workerd, a VM agent, the bridge), then one line
// `vdrelay ready: URL` that opens a working session. Ctrl-C stops everything it started.
//
// The stack runs in a child process in its own process group, so the terminal's Ctrl-C (sent to the whole foreground
// group, and forwarded once more by npm) never reaches workerd, Xvfb or the bridge directly: this process turns it
// into one orderly shutdown of the child, which stops each part in turn and exits.
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { parseArgs } from "node:util"
import { type Stack, StackError, startStack } from "../test/harness/stack.ts"
import { buildConsole } from "../test/harness/console-assets.ts"

const HELP = `usage: npm start [-- options]

Starts the worker on local workerd, a VM agent (the real Debian spice-vdagent under Xvfb when installed,
else a built-in simulator) and the host bridge between them, then prints a console URL with a dev token.

options:
  --port N            worker port on 127.0.0.1 (default 8787; 0 picks a free one)
  --agent KIND        auto | real | sim (default auto)
  --vm NAME           VM name in the tokens (default demo)
  -h, --help          this text
`

const out = (line: string): void => void process.stdout.write(`${line}\n`)
const progress = (line: string): void => out(`vdrelay: ${line}`)
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const
const CHILD = "VDRELAY_START_CHILD"

/** Parent: runs the stack process, forwards the first signal as one SIGTERM, and a later one as SIGKILL. */
const supervise = (): void => {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ["pipe", "inherit", "inherit"],
    env: { ...process.env, [CHILD]: process.stdin.isTTY ? "tty" : "1" },
  })
  // The child reads guest clipboard lines through us (a background group may not read the terminal), and takes
  // the end of this pipe as "the supervisor is gone": it then stops too.
  if (process.stdin.isTTY) process.stdin.pipe(child.stdin!)
  let firstAt = 0
  for (const sig of SIGNALS)
    process.on(sig, () => {
      if (firstAt === 0) return void ((firstAt = Date.now()), child.kill("SIGTERM"))
      // The terminal and npm deliver the same Ctrl-C twice; only a later one means "stop waiting".
      if (Date.now() - firstAt > 2000) {
        progress("forced stop")
        try {
          process.kill(-child.pid!, "SIGKILL")
        } catch {
          // already gone
        }
      }
    })
  child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 130)))
}

const run = async (): Promise<number> => {
  let args
  try {
    args = parseArgs({
      options: { port: { type: "string", default: "8787" }, agent: { type: "string", default: "auto" }, vm: { type: "string", default: "demo" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }).values
  } catch (err) {
    process.stderr.write(`npm start: ${(err as Error).message}\n${HELP}`)
    return 2
  }
  if (args.help === true) return (out(HELP), 0)
  const port = Number(args.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) return (process.stderr.write(`npm start: --port must be 0..65535, got ${args.port}\n`), 2)
  if (!["auto", "real", "sim"].includes(args.agent!)) return (process.stderr.write("npm start: --agent must be auto, real or sim\n"), 2)

  let stack: Stack | undefined
  let stopping: Promise<never> | undefined
  const shutdown = (why: string, code: number): Promise<never> =>
    (stopping ??= (async () => {
      progress(`${why}: stopping the bridge, the agent and the worker…`)
      await stack?.stop()
      progress("stopped")
      process.exit(code)
    })())
  const onSignal = (): void => void shutdown("Ctrl-C", 0)
  for (const sig of SIGNALS) process.on(sig, onSignal)
  process.stdin.on("end", () => void shutdown("npm start went away", 0))

  try {
    if (await buildConsole()) progress("rebuilt the console page (workers/console/generated/assets.ts)")
    stack = await startStack({ port, vm: args.vm!, agent: args.agent as "auto" | "real" | "sim", progress })
  } catch (err) {
    if (err instanceof StackError) process.stderr.write(`npm start: ${err.message}\n  fix: ${err.fix}\n`)
    else process.stderr.write(`npm start: ${(err as Error).stack ?? String(err)}\n`)
    return 1
  }
  // Miniflare and the process helpers exit on the first signal; from here on the orderly shutdown is ours.
  for (const sig of SIGNALS) for (const l of process.listeners(sig)) if (l !== onSignal) process.removeListener(sig, l as () => void)
  if (stopping !== undefined) return -1
  void stack.bridge.managed.exited.then(({ code, signal }) => {
    if (stopping !== undefined) return
    process.stderr.write(`npm start: the bridge exited (${signal ?? code}):\n${stack!.bridge.log.text}\n`)
    void shutdown("bridge exited", 1)
  })

  const viewer = await stack.consoleUrl("controller", { as: "viewer" })
  if (stack.agent.kind === "sim") {
    progress(`simulated guest: type a line and press Enter to copy it in the guest; files land in ${stack.agent.xferDir}`)
    stack.agent.sim!.events.on("event", (e) => {
      if (e._tag === "ClientClipboard" && e.type === 1) progress(`guest clipboard ← console: ${JSON.stringify(new TextDecoder().decode(e.data))}`)
      if (e._tag === "FileReceived") progress(`guest received ${e.path} (${e.size} bytes)`)
      if (e._tag === "Monitors") progress(`guest display set to ${e.monitors.map((m) => `${m.width}×${m.height}`).join(", ")}`)
    })
    if (process.env[CHILD] === "tty") createInterface({ input: process.stdin }).on("line", (line) => void stack!.agent.setClipboard(line))
  } else {
    progress(`guest clipboard: DISPLAY=${stack.agent.display} xclip -selection clipboard -i|-o; files land in ${stack.agent.xferDir}`)
  }
  progress(`a second console as viewer (its token may take control): ${viewer}`)
  out(`vdrelay ready: ${await stack.consoleUrl("controller")}`)
  progress("Ctrl-C stops everything")
  return -1 // keep running until a signal
}

if (process.env[CHILD] === undefined) supervise()
else {
  const code = await run()
  if (code >= 0) process.exit(code)
}
