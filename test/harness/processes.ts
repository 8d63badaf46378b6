// Child processes for the real-agent harness: each in its own process group, its output kept as log lines, killed
// as a group on stop and (synchronously) when the test process exits, so no Xvfb or agent outlives its test.
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"

/** Lines a process wrote (stdout and stderr interleaved in arrival order), with waiters for patterns. */
export class LogLines {
  readonly lines: string[] = []
  private partial = ""
  private readonly waiters = new Set<() => void>()

  constructor(readonly name: string, private readonly echo = false) {}

  push(text: string): void {
    const parts = (this.partial + text).split("\n")
    this.partial = parts.pop() ?? ""
    for (const line of parts) this.add(line)
  }

  /** Flushes a trailing line with no newline (on exit). */
  flush(): void {
    if (this.partial !== "") this.add(this.partial)
    this.partial = ""
  }

  get text(): string {
    return this.lines.join("\n")
  }

  /** Index to pass as `from` so that a later wait only looks at lines written after now. */
  mark(): number {
    return this.lines.length
  }

  find(pattern: RegExp, from = 0): string | undefined {
    for (let i = from; i < this.lines.length; i++) if (pattern.test(this.lines[i]!)) return this.lines[i]
    return undefined
  }

  /** Resolves with the first line at or after `from` matching `pattern`; rejects after `timeoutMs`. */
  async waitFor(pattern: RegExp, opts: { from?: number; timeoutMs?: number } = {}): Promise<string> {
    const from = opts.from ?? 0
    const timeoutMs = opts.timeoutMs ?? 15_000
    const hit = this.find(pattern, from)
    if (hit !== undefined) return hit
    return new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const line = this.find(pattern, from)
        if (line === undefined) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve(line)
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        const tail = this.lines.slice(-15).join("\n  ")
        reject(new Error(`${this.name}: no line matching ${pattern} within ${timeoutMs} ms; last lines:\n  ${tail}`))
      }, timeoutMs)
      this.waiters.add(check)
    })
  }

  private add(line: string): void {
    this.lines.push(line)
    if (this.echo) process.stderr.write(`[${this.name}] ${line}\n`)
    for (const w of [...this.waiters]) w()
  }
}

export interface Managed {
  readonly name: string
  readonly child: ChildProcess
  readonly pid: number
  readonly log: LogLines
  /** Settles when the process has exited (with its code or signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly running: () => boolean
  /** SIGTERM to the whole group, SIGKILL after `graceMs`; resolves once the leader has exited. */
  readonly stop: (graceMs?: number) => Promise<void>
}

/** Every live process group this module started; killed synchronously when the test process exits. */
const live = new Set<number>()
let exitHookInstalled = false

const killGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // ESRCH: the group is already gone.
  }
}

const installExitHook = (): void => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => {
    for (const pgid of live) killGroup(pgid, "SIGKILL")
  })
  // The groups do not get the terminal's Ctrl-C, and a signal nobody listens to ends Node without "exit" handlers:
  // clean up, then re-raise. If the program handles the signal itself (Effect's runMain does), leave it to that
  // handler; its eventual exit runs the hook above.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      if (process.listenerCount(sig) > 0) return
      for (const pgid of live) killGroup(pgid, "SIGKILL")
      live.clear()
      process.kill(process.pid, sig)
    })
  }
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** Extra pipes beyond stdio 0–2 (e.g. Xvfb's -displayfd 3). */
  readonly extraPipes?: number
  /** Copy each log line to this process's stderr as it arrives (debugging). */
  readonly echo?: boolean
  /** Written to the process's stdin, which is then closed (stdin is /dev/null without it). */
  readonly stdin?: string | Uint8Array
  /** Append to this log (one log per role across restarts) instead of a new one. */
  readonly log?: LogLines
}

/** Starts `command` as the leader of a new process group and captures its output as log lines. */
export const spawnGroup = (name: string, command: string, args: ReadonlyArray<string>, opts: SpawnOptions = {}): Managed => {
  installExitHook()
  const stdio: Array<"ignore" | "pipe"> = [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"]
  for (let i = 0; i < (opts.extraPipes ?? 0); i++) stdio.push("pipe")
  const child = spawn(command, [...args], { detached: true, stdio, env: opts.env ?? process.env, cwd: opts.cwd })
  const log = opts.log ?? new LogLines(name, opts.echo ?? process.env.VDRELAY_HARNESS_ECHO === "1")
  child.stdout?.setEncoding("utf8").on("data", (s: string) => log.push(s))
  child.stderr?.setEncoding("utf8").on("data", (s: string) => log.push(s))
  if (opts.stdin !== undefined && child.stdin !== null) {
    child.stdin.on("error", () => {})
    child.stdin.end(opts.stdin)
  }
  const pid = child.pid ?? -1
  if (pid > 0) live.add(pid)
  let done = false
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("error", (err) => {
      log.push(`spawn error: ${err.message}\n`)
      done = true
      live.delete(pid)
      resolve({ code: -1, signal: null })
    })
    child.once("exit", (code, signal) => {
      done = true
      log.flush()
      live.delete(pid)
      resolve({ code, signal })
    })
  })
  const stop = async (graceMs = 2000): Promise<void> => {
    if (pid <= 0) return
    // Kill the group even when the leader is gone: children it forked (xclip's server half) may live on.
    killGroup(pid, "SIGTERM")
    if (!done) {
      const timer = setTimeout(() => killGroup(pid, "SIGKILL"), graceMs)
      await exited
      clearTimeout(timer)
    }
    killGroup(pid, "SIGKILL")
    live.delete(pid)
  }
  return { name, child, pid, log, exited, running: () => !done, stop }
}

/** Runs a short command to completion; resolves with its output, rejects on a non-zero exit or after `timeoutMs`. */
export const run = async (
  command: string,
  args: ReadonlyArray<string>,
  opts: { env?: NodeJS.ProcessEnv; input?: Uint8Array | string; timeoutMs?: number } = {},
): Promise<{ stdout: Buffer; stderr: string }> => {
  const child = spawn(command, [...args], { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env })
  const out: Buffer[] = []
  let err = ""
  child.stdout.on("data", (b: Buffer) => out.push(b))
  child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s))
  child.stdin.on("error", () => {})
  child.stdin.end(opts.input ?? "")
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 10_000)
  const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null]
  clearTimeout(timer)
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} failed (${signal ?? `exit ${code}`}): ${err.trim()}`)
  return { stdout: Buffer.concat(out), stderr: err }
}
