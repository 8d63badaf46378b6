// Runs the real Debian spice-vdagent 0.22.1 (daemon + X11 session agent) under Xvfb behind an emulated QEMU chardev,
// with no VM (spec §11): the host socket it returns speaks the raw vdagent chunk stream, as QEMU's chardev socket does.
// Used by the e2e tests, scripts/capture-golden.ts and `npm start`; free of test-framework imports.
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { EmulatedChardev } from "./chardev.ts"
import { LogLines, type Managed, run, spawnGroup } from "./processes.ts"

/** Thrown when a binary the harness needs is not installed; `reason` says which kind of failure. */
export class RealAgentError extends Error {
  constructor(
    readonly reason: "MissingBinary" | "StartFailed",
    message: string,
  ) {
    super(message)
    this.name = "RealAgentError"
  }
}

const PACKAGES: Record<string, string> = {
  "spice-vdagentd": "spice-vdagent",
  "spice-vdagent": "spice-vdagent",
  Xvfb: "xvfb",
  xclip: "xclip",
}

/** Finds an executable on PATH or in the sbin directories a non-root PATH often lacks (spice-vdagentd is in /usr/sbin). */
export const findBinary = (name: string): string | undefined => {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/local/sbin"]
  for (const dir of dirs) {
    if (dir === "") continue
    const p = join(dir, name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return undefined
}

const requireBinary = (name: string): string => {
  const p = findBinary(name)
  if (p !== undefined) return p
  throw new RealAgentError(
    "MissingBinary",
    `${name} not found: install the Debian package '${PACKAGES[name] ?? name}' (run \`bash infra/install-deps.sh\`)`,
  )
}

/** True when every binary the harness needs is installed (tests use it to decide skip vs fail outside CI). */
export const realAgentAvailable = (): boolean => Object.keys(PACKAGES).every((b) => findBinary(b) !== undefined)

/**
 * Daemon log lines that mean the daemon lost its place in the byte stream or refused a chunk or message (strings from
 * spice-vdagent 0.22.1 `virtio-port.c` and `vdagentd.c`). "AIIEEE lost spice client connection" on its own is not
 * listed: with an empty `(err: )` it is the normal reaction to a host disconnect (EOF).
 */
export const SYNC_ERROR_PATTERNS: ReadonlyArray<RegExp> = [
  /lost sync/,
  /chunk size \d+ too large/,
  /chunk port \d+ out of range/,
  /invalid message size/,
  /unknown message type/,
  /unexpected extra data/,
]

export interface RealAgentOptions {
  /** Xvfb screen geometry, WxHxD. */
  readonly screen?: string
  /** Copy every log line to stderr as it arrives (also VDRELAY_HARNESS_ECHO=1). */
  readonly echo?: boolean
  /** Milliseconds to wait for each start step. */
  readonly startTimeoutMs?: number
}

export interface RealAgent {
  readonly runDir: string
  /** Connect here as QEMU's chardev peer (the bridge's side). */
  readonly hostSocketPath: string
  /** X display of the session agent, e.g. ":3". */
  readonly display: string
  /** The session agent's file-transfer directory (-f). */
  readonly xferDir: string
  /** The fake uinput file: mouse events land here as 24-byte `struct input_event` records. */
  readonly uinputPath: string
  readonly chardev: EmulatedChardev
  readonly logs: { readonly daemon: LogLines; readonly session: LogLines; readonly xvfb: LogLines }
  /** Puts text on a guest selection through xclip (the guest agent then GRABs); resolves once xclip owns it. */
  setClipboard(text: string | Uint8Array, opts?: { selection?: "clipboard" | "primary"; target?: string }): Promise<void>
  /** Reads a guest selection through xclip (if the client owns it, the agent sends REQUEST and waits for CLIPBOARD). */
  getClipboard(opts?: { selection?: "clipboard" | "primary"; target?: string; timeoutMs?: number }): Promise<Buffer>
  /** Kills the daemon and session agent and starts them again; resolves when the new daemon has opened its port. */
  restartDaemon(): Promise<void>
  /** Kills the daemon (the session agent, started with -x, exits with it). */
  killDaemon(): Promise<void>
  /** Kills only the session agent: the daemon releases the clipboards it owned and closes its port (spec §6). */
  killSession(): Promise<void>
  /** Closes the guest side of the chardev; the daemon sees EOF and reopens its port. */
  closeGuest(): void
  /** Drops the host connection at the chardev; the daemon sees the loss and reopens its port. */
  dropHost(): void
  /** Daemon/session log lines (from index `from` of the daemon log) that mean lost sync or a refused chunk. */
  syncErrors(from?: number): string[]
  agentLogHasSyncErrors(from?: number): boolean
  stop(): Promise<void>
}

const xvfbDisplay = async (xvfb: Managed, timeoutMs: number): Promise<string> => {
  const fd = xvfb.child.stdio[3]
  if (fd === null || fd === undefined || !("on" in fd)) throw new RealAgentError("StartFailed", "Xvfb: no -displayfd pipe")
  return new Promise<string>((resolve, reject) => {
    let text = ""
    const timer = setTimeout(() => reject(new RealAgentError("StartFailed", `Xvfb gave no display in ${timeoutMs} ms:\n${xvfb.log.text}`)), timeoutMs)
    fd.on("data", (b: Buffer) => {
      text += b.toString("utf8")
      const m = /^(\d+)\n/.exec(text)
      if (m !== null) {
        clearTimeout(timer)
        resolve(`:${m[1]}`)
      }
    })
    void xvfb.exited.then(() => {
      clearTimeout(timer)
      reject(new RealAgentError("StartFailed", `Xvfb exited before giving a display:\n${xvfb.log.text}`))
    })
  })
}

/** Starts Xvfb, the chardev emulator, spice-vdagentd and spice-vdagent in a fresh run directory. */
export const startRealAgent = async (opts: RealAgentOptions = {}): Promise<RealAgent> => {
  const bins = {
    daemon: requireBinary("spice-vdagentd"),
    session: requireBinary("spice-vdagent"),
    xvfb: requireBinary("Xvfb"),
    xclip: requireBinary("xclip"),
  }
  const timeoutMs = opts.startTimeoutMs ?? 20_000
  const echo = opts.echo ?? process.env.VDRELAY_HARNESS_ECHO === "1"
  const runDir = mkdtempSync(join(tmpdir(), "vdr-agent-"))
  const paths = {
    vport: join(runDir, "vport"),
    host: join(runDir, "chardev.sock"),
    daemonSock: join(runDir, "vdagentd.sock"),
    uinput: join(runDir, "uinput"),
    xfer: join(runDir, "xfer"),
  }
  writeFileSync(paths.uinput, "")
  mkdirSync(paths.xfer)
  const logs = { daemon: new LogLines("vdagentd", echo), session: new LogLines("vdagent", echo), xvfb: new LogLines("Xvfb", echo) }
  const owned: Managed[] = []
  let xvfb: Managed | undefined
  let chardev: EmulatedChardev | undefined
  let daemon: Managed | undefined
  let session: Managed | undefined
  let stopped = false

  const stopPair = async (): Promise<void> => {
    await Promise.all([session?.stop(), daemon?.stop()])
  }

  // An abrupt exit skips stop(): processes.ts kills the groups, this removes the run directory.
  const removeRunDir = (): void => rmSync(runDir, { recursive: true, force: true })
  process.on("exit", removeRunDir)

  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    process.off("exit", removeRunDir)
    await stopPair()
    await Promise.all(owned.map((m) => m.stop(500)))
    await xvfb?.stop()
    await chardev?.close()
    rmSync(runDir, { recursive: true, force: true })
  }

  let display = ""
  const sessionEnv = (): NodeJS.ProcessEnv => ({ ...process.env, DISPLAY: display, NO_AT_BRIDGE: "1", GDK_BACKEND: "x11" })

  const startPair = async (): Promise<void> => {
    const from = logs.daemon.mark()
    const guestsBefore = chardev!.counters.guestConnections
    rmSync(paths.daemonSock, { force: true })
    daemon = spawnGroup(
      "vdagentd",
      bins.daemon,
      ["-x", "-d", "-d", "-X", "-f", "-u", paths.uinput, "-s", paths.vport, "-S", paths.daemonSock],
      { log: logs.daemon },
    )
    // The session agent exits at once if the daemon's socket is not there yet (it does not retry with -x).
    await waitForPath(paths.daemonSock, daemon, timeoutMs)
    session = spawnGroup(
      "vdagent",
      bins.session,
      ["-x", "-d", "-s", paths.vport, "-S", paths.daemonSock, "-f", paths.xfer, "-o", "0"],
      { log: logs.session, env: sessionEnv() },
    )
    // The daemon opens the port only once the session agent has reported its screen geometry (spec §6).
    await Promise.race([
      logs.daemon.waitFor(/opening vdagent virtio channel/, { from, timeoutMs }),
      daemon.exited.then(() => Promise.reject(new RealAgentError("StartFailed", `spice-vdagentd exited:\n${logs.daemon.text}`))),
    ])
    await chardev!.waitForGuest(guestsBefore, timeoutMs)
  }

  try {
    xvfb = spawnGroup("Xvfb", bins.xvfb, ["-displayfd", "3", "-screen", "0", opts.screen ?? "1024x768x24", "-nolisten", "tcp", "-noreset"], {
      extraPipes: 1,
      log: logs.xvfb,
    })
    display = await xvfbDisplay(xvfb, timeoutMs)
    chardev = await EmulatedChardev.listen({ guestPath: paths.vport, hostPath: paths.host })
    await startPair()
  } catch (e) {
    await stop()
    throw e
  }

  const xclipArgs = (o: { selection?: string; target?: string } | undefined): string[] => {
    const args = ["-selection", o?.selection ?? "clipboard"]
    if (o?.target !== undefined) args.push("-t", o.target)
    return args
  }

  const agent: RealAgent = {
    runDir,
    hostSocketPath: paths.host,
    display,
    xferDir: paths.xfer,
    uinputPath: paths.uinput,
    chardev: chardev!,
    logs,
    setClipboard: async (text, o) => {
      // `xclip -quiet` stays in the foreground (our child, so it is reaped; the default forks a server that only init
      // can reap) and prints "Waiting for selection requests" once it owns the selection. It serves requests until
      // another owner takes the selection, then exits; stop() kills any left.
      for (let i = owned.length - 1; i >= 0; i--) if (!owned[i]!.running()) owned.splice(i, 1)
      const m = spawnGroup("xclip-in", bins.xclip, ["-quiet", "-i", ...xclipArgs(o)], { env: sessionEnv(), stdin: text })
      owned.push(m)
      await Promise.race([
        m.log.waitFor(/Waiting for selection requests/, { timeoutMs: 10_000 }),
        m.exited.then(({ code }) => Promise.reject(new Error(`xclip -i exited (${code}) before owning the selection: ${m.log.text}`))),
      ])
    },
    getClipboard: async (o) => {
      const { stdout } = await run(bins.xclip, ["-o", ...xclipArgs(o)], { env: sessionEnv(), timeoutMs: o?.timeoutMs ?? 10_000 })
      return stdout
    },
    restartDaemon: async () => {
      await stopPair()
      await startPair()
    },
    killDaemon: async () => {
      await stopPair()
    },
    killSession: async () => {
      await session?.stop()
    },
    closeGuest: () => chardev!.closeGuest(),
    dropHost: () => chardev!.dropHost(),
    syncErrors: (from = 0) =>
      logs.daemon.lines.slice(from).filter((l) => SYNC_ERROR_PATTERNS.some((p) => p.test(l))),
    agentLogHasSyncErrors: (from = 0) => agent.syncErrors(from).length > 0,
    stop,
  }
  return agent
}

const waitForPath = async (path: string, owner: Managed, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      accessSync(path)
      return
    } catch {
      if (!owner.running()) throw new RealAgentError("StartFailed", `${owner.name} exited before creating ${path}:\n${owner.log.text}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  throw new RealAgentError("StartFailed", `${owner.name} did not create ${path} within ${timeoutMs} ms:\n${owner.log.text}`)
}
