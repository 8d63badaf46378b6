// Boots the test guest in a real QEMU (qemu-system-x86_64, KVM when /dev/kvm is usable, else TCG) with the agent port
// wired exactly as infra/qemu/vdagent-args.sh (virtio-serial-pci vser0, chardev socket "vdagent", virtserialport
// com.redhat.spice.0 id "vdport"), a second port for the control loop, and two QMP monitors: one for the bridge under
// test, one for the test itself (QEMU serves one client per monitor). All sockets live in one directory: two VMs with
// two directories are two hosts; a restart on the same directory is "QEMU started again on the same sockets".
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, createWriteStream, type WriteStream } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { LogLines, type Managed, spawnGroup } from "../harness/processes.ts"
import { findBinary } from "../harness/real-agent.ts"
import { ControlClient } from "./control.ts"
import { Guest } from "./guest.ts"
import { type GuestImage, type ImageOptions, VmSetupError, guestImage, missingGuestInputs } from "./image.ts"
import { Qmp } from "./qmp.ts"

export const QEMU_BINARY = "qemu-system-x86_64"
/** Chardev and device ids, as infra/qemu/vdagent-args.sh and the bridge config expect (qmp.device / qmp.chardev). */
export const AGENT_CHARDEV = "vdagent"
export const AGENT_DEVICE = "vdport"
export const CONTROL_CHARDEV = "ctl"
export const CONTROL_DEVICE = "ctlport"
export const CONTROL_PORT_NAME = "org.vdrelay.ctl"

/** How far a (re)boot has got: QEMU's monitor answers; the guest's control loop answers; the agent has its port open. */
export type VmWait = "qmp" | "control" | "agent"

export interface VmOptions {
  /** Directory for the sockets and the console log. Default: a new temporary directory, removed by stop(). */
  readonly dir?: string
  /** Guest RAM; spec §14 found ≥ 192 MB needed. Default 256. */
  readonly memoryMb?: number
  /** Pass -no-reboot: a guest reboot or system_reset then makes QEMU exit. Default false (system_reset reboots). */
  readonly noReboot?: boolean
  /** `-incoming <uri>`: start as a live-migration destination (then wait defaults to "qmp"). */
  readonly incoming?: string
  /**
   * Xvfb's screen in the guest, "WxHxD" (default "1024x768x24"). It is also the largest size MONITORS_CONFIG can
   * resize to: Xvfb's RandR only goes down from its start size and back.
   */
  readonly screen?: string
  /** Appended to the guest kernel's command line. */
  readonly kernelArgs?: ReadonlyArray<string>
  /** Appended to the QEMU command line as is. */
  readonly extraArgs?: ReadonlyArray<string>
  /**
   * What start (and restart) waits for: "qmp" (QEMU up), "control" (the guest's control loop answers),
   * "agent" (also spice-vdagentd has the agent port open: `frontend-open` of chardev "vdagent"). Default "agent".
   */
  readonly wait?: VmWait
  /** Milliseconds for the wait above. Default 180 s: a TCG boot takes ~9 s on 2 idle cores, 40–60 s at load 12+. */
  readonly bootTimeoutMs?: number
  readonly image?: ImageOptions
  /** Copy the serial console to stderr as it arrives (also VDRELAY_HARNESS_ECHO=1). */
  readonly echo?: boolean
}

export interface Vm {
  readonly dir: string
  /** The agent port's chardev socket (QEMU listens; connect as the bridge/host). */
  readonly agentSocket: string
  /** A QMP monitor left free for the bridge under test. */
  readonly qmpSocket: string
  /** The test's own QMP monitor (what `qmp` is connected to). */
  readonly testQmpSocket: string
  readonly controlSocket: string
  readonly image: GuestImage
  readonly accel: "kvm" | "tcg"
  /** The test's QMP client of the current QEMU process (a new one after restart). */
  readonly qmp: Qmp
  /** Control of the guest (exec, clipboard, screen, files, agent) of the current QEMU process. */
  readonly guest: Guest
  /** Serial console lines (kernel and init), across restarts; also in `<dir>/console.log`. */
  readonly console: LogLines
  /** Date.now() when the current QEMU process was spawned. */
  readonly startedAt: number
  /** Spawn → the wait condition met, for the current QEMU process (ms). */
  readonly bootMs: number
  readonly running: boolean
  readonly process: Managed
  /** Resolves when the guest has the agent port open (query-chardev `frontend-open`), polling every 50 ms. */
  waitForAgentPort(open?: boolean, timeoutMs?: number): Promise<void>
  /** QMP system_reset, then waits for `wait` (default "agent"; the guest reboots, sockets stay connected, spec §12). */
  reset(wait?: VmWait): Promise<void>
  /** Guest `poweroff -f`; resolves when QEMU has exited (SHUTDOWN, then EOF on the chardev socket). */
  poweroff(): Promise<void>
  /** SIGKILL to QEMU; resolves once it has exited. */
  kill(): Promise<void>
  /** Starts QEMU again on the same sockets and image after it exited; waits for `wait` (default "agent"). */
  restart(wait?: VmWait): Promise<void>
  /** QMP quit (SIGKILL if that does not end it), closes clients, removes a temporary dir. Idempotent. */
  stop(): Promise<void>
}

/** Quiet unless VDRELAY_VM_DEBUG=1 (then the kernel's messages and each control request reach the console log). */
const kernelCommandLine = (opts: VmOptions): string =>
  ["console=ttyS0", process.env.VDRELAY_VM_DEBUG === "1" ? "loglevel=7 vdrelay.debug" : "quiet loglevel=3", "panic=-1", ...(opts.screen !== undefined ? [`vdrelay.screen=${opts.screen}`] : []), ...(opts.kernelArgs ?? [])].join(" ")

/** What this machine lacks to run VM tests (empty: all there). */
export const vmMissing = (): string[] => {
  const missing = findBinary(QEMU_BINARY) === undefined ? [`${QEMU_BINARY} (Debian package 'qemu-system-x86')`] : []
  return [...missing, ...missingGuestInputs()]
}

const kvmUsable = (): boolean => {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK)
    return true
  } catch {
    return false
  }
}

/** Builds (or takes from the cache) the guest image, boots it and waits per `opts.wait`. */
export const startVm = async (opts: VmOptions = {}): Promise<Vm> => {
  const missing = vmMissing()
  if (missing.length > 0) throw new VmSetupError(`VM tests need: ${missing.join("; ")} — run \`bash infra/install-deps.sh\``)
  const qemuBin = findBinary(QEMU_BINARY)!
  const image = guestImage(opts.image)
  const ownDir = opts.dir === undefined
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "vdr-vm-"))
  mkdirSync(dir, { recursive: true })
  // An abrupt exit skips stop(): processes.ts kills QEMU, this removes a directory we made.
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true })
  if (ownDir) process.on("exit", removeDir)
  const paths = {
    agent: join(dir, "vdagent.sock"),
    qmp: join(dir, "qmp.sock"),
    testQmp: join(dir, "qmp-test.sock"),
    control: join(dir, "ctl.sock"),
    console: join(dir, "console.log"),
  }
  const accel = kvmUsable() ? "kvm" : "tcg"
  const wait = opts.wait ?? (opts.incoming !== undefined ? "qmp" : "agent")
  const bootTimeoutMs = opts.bootTimeoutMs ?? 180_000
  const args = [
    ...["-machine", `q35,accel=${accel}`, "-cpu", accel === "kvm" ? "host" : "max", "-m", String(opts.memoryMb ?? 256), "-smp", "1"],
    // No default NIC/VGA/option ROMs: nothing the guest needs, and iPXE alone costs seconds under TCG.
    ...["-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio"],
    ...["-kernel", image.kernel, "-initrd", image.initrd, "-append", kernelCommandLine(opts)],
    ...["-device", "virtio-serial-pci,id=vser0"],
    ...["-chardev", `socket,id=${AGENT_CHARDEV},path=${paths.agent},server=on,wait=off`],
    ...["-device", `virtserialport,bus=vser0.0,chardev=${AGENT_CHARDEV},name=com.redhat.spice.0,id=${AGENT_DEVICE}`],
    ...["-chardev", `socket,id=${CONTROL_CHARDEV},path=${paths.control},server=on,wait=off`],
    ...["-device", `virtserialport,bus=vser0.0,chardev=${CONTROL_CHARDEV},name=${CONTROL_PORT_NAME},id=${CONTROL_DEVICE}`],
    ...["-qmp", `unix:${paths.qmp},server=on,wait=off`, "-qmp", `unix:${paths.testQmp},server=on,wait=off`],
    ...(opts.noReboot === true ? ["-no-reboot"] : []),
    ...(opts.incoming !== undefined ? ["-incoming", opts.incoming] : []),
    ...(opts.extraArgs ?? []),
  ]
  const consoleLog = new LogLines("vm-console", opts.echo ?? process.env.VDRELAY_HARNESS_ECHO === "1")
  let consoleFile: WriteStream | undefined
  let proc: Managed
  let qmp: Qmp
  let control: ControlClient
  let guest: Guest
  let startedAt = 0
  let bootMs = 0
  let stopped = false

  const waitForAgentPort = async (open = true, timeoutMs = bootTimeoutMs): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    while ((await qmp.frontendOpen(AGENT_CHARDEV)) !== open) {
      if (!proc.running()) throw new Error(`QEMU exited while waiting for the agent port to ${open ? "open" : "close"}:\n${tail()}`)
      if (Date.now() > deadline) throw new Error(`the guest did not ${open ? "open" : "close"} the agent port within ${timeoutMs} ms:\n${tail()}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const tail = (): string => consoleLog.lines.slice(-20).join("\n")

  /** Waits for `until` from now; fails early if QEMU exits. */
  const awaitReady = async (until: VmWait): Promise<void> => {
    const exited = proc.exited.then(({ code, signal }) => Promise.reject(new Error(`QEMU exited (${signal ?? `code ${code}`}) during boot:\n${consoleLog.text}`)))
    exited.catch(() => {})
    const steps = async (): Promise<void> => {
      if (until === "qmp") return
      await guest.sh("true", { timeoutMs: bootTimeoutMs })
      if (until === "agent") await waitForAgentPort(true, bootTimeoutMs)
    }
    await Promise.race([steps(), exited])
    bootMs = Date.now() - startedAt
  }

  const launch = async (until: VmWait): Promise<void> => {
    consoleFile ??= createWriteStream(paths.console, { flags: "a" })
    startedAt = Date.now()
    proc = spawnGroup("qemu", qemuBin, args, { log: consoleLog })
    proc.child.stdout?.on("data", (s: string | Buffer) => consoleFile?.write(s))
    proc.child.stderr?.on("data", (s: string | Buffer) => consoleFile?.write(s))
    const exited = proc.exited.then(({ code, signal }) => Promise.reject(new Error(`QEMU exited (${signal ?? `code ${code}`}) at start:\n${consoleLog.text}`)))
    exited.catch(() => {})
    qmp = await Promise.race([Qmp.connect(paths.testQmp, 15_000), exited])
    // Events interleaved with the serial console, so a console log tells the whole story of a boot.
    qmp.onEvent = (e) => consoleLog.push(`[qmp] ${e.event} ${JSON.stringify(e.data)}\n`)
    control = await Promise.race([ControlClient.connect(paths.control, 15_000), exited])
    guest = new Guest(control)
    await awaitReady(until)
  }

  const closeClients = (): void => {
    qmp?.close()
    control?.close()
  }

  const vm: Vm = {
    dir,
    agentSocket: paths.agent,
    qmpSocket: paths.qmp,
    testQmpSocket: paths.testQmp,
    controlSocket: paths.control,
    image,
    accel,
    get qmp() {
      return qmp
    },
    get guest() {
      return guest
    },
    console: consoleLog,
    get startedAt() {
      return startedAt
    },
    get bootMs() {
      return bootMs
    },
    get running() {
      return proc.running()
    },
    get process() {
      return proc
    },
    waitForAgentPort,
    reset: async (until = "agent") => {
      const mark = qmp.mark()
      await qmp.execute("system_reset")
      await qmp.waitForEvent("RESET", { from: mark })
      // Whatever was asked of the old boot will not be answered, and the tail of a request it had begun to read may
      // still be in the socket: hang up so that QEMU drops it (finding 5 of docs/reliability.md §2b).
      await control.reconnect("the guest was reset")
      startedAt = Date.now()
      await awaitReady(until)
    },
    poweroff: async () => {
      guest.poweroff()
      await proc.exited
      closeClients()
    },
    kill: async () => {
      // SIGKILL at once: a SIGTERM would let QEMU shut down in order, which is not the fault being simulated.
      try {
        process.kill(-proc.pid, "SIGKILL")
      } catch {
        // already gone
      }
      await proc.exited
      closeClients()
    },
    restart: async (until = "agent") => {
      if (proc.running()) throw new Error("restart: QEMU is still running (poweroff, kill or stop it first)")
      closeClients()
      await launch(until)
    },
    stop: async () => {
      if (stopped) return
      stopped = true
      if (proc?.running()) {
        // Killed if it has not gone within 5 s: a QEMU whose guest powered off without QEMU exiting (seen under load)
        // may not answer `quit` either, and the stop must not wait on that answer.
        const timer = setTimeout(() => void proc.stop(0), 5000)
        await Promise.race([qmp.execute("quit").catch(() => {}), proc.exited])
        await proc.exited
        clearTimeout(timer)
      }
      await proc?.stop(0)
      closeClients()
      consoleFile?.end()
      if (ownDir) {
        process.off("exit", removeDir)
        if (existsSync(dir)) removeDir()
      }
    },
  }

  try {
    await launch(wait)
  } catch (e) {
    await vm.stop()
    throw e
  }
  return vm
}
