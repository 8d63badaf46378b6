// The whole relay around a real VM, for lifecycle faults (issue 11 item 3): a real QEMU guest with the real
// spice-vdagent, a tap (chardev-tap.ts) between QEMU's agent chardev and the bridge process, the bridge on the tap and
// the VM's QMP monitor, a cuttable proxy on the tunnel, workerd with a persist dir (restartable on the same port), and
// a controller console on the SDK. A round puts a message in flight (a file to the guest, or a large guest clipboard
// to the console), injects a fault when the tap has seen a share of it cross the chardev, then judges:
//   whole      the message arrived whole (file byte-exact in the guest, clipboard text identical)
//   reported   the SDK reported it failed and the guest holds no partial file
//   torn       a tap connection's host→guest bytes do not parse from byte 0, a sync-error line in the agent's log since
//              the fault, a file reported done that differs, a partial file left behind, a clipboard that differs
//   stale      DATA of a transfer after its cancel / on another connection, or a round trip reading an older value
//   duplicated a client message handed to the chardev twice
// and every round ends with a clipboard round trip both ways through the SDK.
import { createHash, randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type ClientError, type Session, connect } from "../../src/client/index.ts"
import { type BridgeProcess, startBridgeProcess } from "../harness/bridge-process.ts"
import { CutProxy } from "../harness/cut-proxy.ts"
import { type LocalWorker, startWorker } from "../harness/worker.ts"
import { ChardevTap, type Problem } from "./chardev-tap.ts"
import { AGENT_CHARDEV, AGENT_DEVICE, type Vm, type VmOptions, startVm } from "./index.ts"

export const TENANT = "vm-tests"
export const VM_ID = "vm-life"

/** "unrecovered": the message itself was whole or reported, but the clipboard round trip after the fault failed. */
export type Outcome = "whole" | "reported" | "torn" | "stale" | "duplicated" | "unrecovered"
export type Direction = "file-to-guest" | "clipboard-to-console"

export interface RoundResult {
  readonly fault: FaultName
  readonly direction: Direction
  readonly outcome: Outcome
  /** What the SDK said of the message in flight ("done", "failed: <reason>", "text", …). */
  readonly sdk: string
  /** Everything that made the round other than whole/reported, and notes. */
  readonly findings: ReadonlyArray<string>
  readonly notes: ReadonlyArray<string>
  readonly ms: number
  /** The fault was injected while the message was still crossing (else the round says little). */
  readonly midway: boolean
}

interface LogMark {
  readonly bootAt: number
  readonly line: number
}

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

export const until = async (pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Waits for `pred` up to `timeoutMs`; false when it never held (for outcomes that are findings, not test errors). */
const within = async (pred: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> =>
  until(pred, "", timeoutMs).then(
    () => true,
    () => false,
  )

/** Position-dependent bytes: a doubled or swapped 64 KiB block changes the file's hash and is found by content. */
export const fileBytes = (size: number, salt: number): Uint8Array => {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (Math.imul(i + salt, 2654435761) >>> 24) ^ (i >>> 16)
  return out
}

/** Text whose every 64-byte line names its position: a torn or shifted copy does not compare equal. */
const bigText = (bytes: number, tag: string): string => {
  const lines: string[] = []
  for (let i = 0; lines.length * 64 < bytes; i++) lines.push(`${tag} ${String(i).padStart(8, "0")} `.padEnd(63, "."))
  return lines.join("\n")
}

export const CI_FAULTS = ["agent-restart", "port-reopen-300ms", "bridge-kill", "tunnel-cut", "workerd-restart"] as const
/** Faults that reboot or restart the VM (the many-round runner, scripts/chaos-vm.ts). */
export const VM_FAULTS = ["system-reset", "poweroff-restart", "qemu-kill", "port-unplug", "bridge-before-qemu", "port-reopen-0ms", "port-reopen-20ms", "port-reopen-2s"] as const
export type FaultName = (typeof CI_FAULTS)[number] | (typeof VM_FAULTS)[number]

/** How long QEMU may take to exit once the guest powered off (TCG boots alone take up to 170 s at load 25). */
const POWEROFF_EXIT_MS = 180_000

/**
 * The guest closes the agent port (daemon stopped) and reopens it `gapMs` later (daemon started). Issue 11 asks for no
 * stale byte at a new opener for gaps ≥ 20 ms; the 0-ms gap (stop and start back to back: the daemon's own start-up
 * still takes ~1.6 s, docs/qemu-facts.md §4) is reported separately.
 */
const portReopen = (gapMs: number): { readonly what: string; readonly inject: (s: VmStack) => Promise<void> } => ({
  what: `the guest closes the agent port (daemon stopped), reopens it ${gapMs} ms later (daemon started)`,
  inject: async (s) => {
    const pause = gapMs === 0 ? "" : ` usleep ${gapMs * 1000};`
    await s.vm.guest.sh(`/usr/libexec/vdrelay/agent stop;${pause} /usr/libexec/vdrelay/agent start`, { timeoutMs: 60_000 })
  },
})

/** Kills the bridge's process group (SIGKILL) and waits until it has exited. */
const killBridge = async (s: VmStack): Promise<void> => {
  process.kill(-s.bridge.pid, "SIGKILL")
  await s.bridge.managed.exited
}

export const FAULTS: Record<FaultName, { readonly what: string; readonly inject: (s: VmStack) => Promise<void> }> = {
  "agent-restart": { what: "spice-vdagentd and spice-vdagent killed and restarted inside the guest", inject: (s) => s.vm.guest.restartAgent() },
  "port-reopen-300ms": portReopen(300),
  "bridge-kill": {
    what: "the bridge process group killed (SIGKILL) and started again on the same config",
    inject: async (s) => {
      // The fault is over once the console has seen the old agent session end and the new one's caps (a new chardev
      // connection: the relay tells consoles before it asks the agent, docs/protocol.md bridge link rule 3); until
      // then the console still sees the old agent within the tunnel's grace, and what it sends is not for the new one.
      let down = false
      const off = s.session.on("agent", (a) => void (a.connected || (down = true)))
      try {
        await killBridge(s)
        await s.bridge.restart()
        await until(() => down && s.session.agent.connected && s.session.agent.caps !== null, "the console seeing the agent go and come back on the bridge's new chardev connection")
      } finally {
        off()
      }
    },
  },
  "tunnel-cut": { what: "every TCP connection between the bridge and workerd reset (no close frame)", inject: async (s) => s.tunnel.cut() },
  "workerd-restart": { what: "workerd disposed and started again on the same port and persist dir", inject: (s) => s.worker.restart() },
  "system-reset": { what: "QMP system_reset: the guest reboots, the chardev socket stays connected", inject: (s) => s.vm.reset() },
  "poweroff-restart": {
    what: "the guest powers off (QEMU exits), QEMU started again on the same sockets",
    inject: async (s) => {
      // Seen once (chaos:vm seed 32, round 23, load ≈ 20): the guest printed "reboot: Power down" and QEMU stayed up,
      // idle, for 30 minutes. That is a finding of the test bed, not a round to wait on forever.
      const off = s.vm.poweroff()
      const exited = await Promise.race([off.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), POWEROFF_EXIT_MS))])
      if (!exited) throw new Error(`QEMU did not exit within ${POWEROFF_EXIT_MS / 1000} s of the guest's poweroff (last console lines: ${s.vm.console.lines.slice(-3).join(" | ").trim()})`)
      await s.vm.restart()
    },
  },
  "qemu-kill": {
    what: "QEMU killed (SIGKILL), started again on the same sockets",
    inject: async (s) => {
      await s.vm.kill()
      await s.vm.restart()
    },
  },
  "port-unplug": {
    what: "QMP device_del of the agent port, then device_add of it again",
    inject: async (s) => {
      const mark = s.vm.qmp.mark()
      await s.vm.qmp.execute("device_del", { id: AGENT_DEVICE })
      await s.vm.qmp.waitForEvent("DEVICE_DELETED", { from: mark, timeoutMs: 60_000 })
      await s.vm.qmp.execute("device_add", { driver: "virtserialport", bus: "vser0.0", chardev: AGENT_CHARDEV, name: "com.redhat.spice.0", id: AGENT_DEVICE })
      await s.vm.waitForAgentPort(true, 120_000)
    },
  },
  "port-reopen-0ms": portReopen(0),
  "port-reopen-20ms": portReopen(20),
  "port-reopen-2s": portReopen(2000),
  "bridge-before-qemu": {
    what: "QEMU killed and the bridge killed; the bridge started (and failing to reach the chardev) before QEMU is",
    inject: async (s) => {
      await s.vm.kill()
      await killBridge(s)
      const tries = s.tap.refused
      await s.bridge.restart()
      await until(() => s.tap.refused > tries, "the bridge trying the chardev with QEMU down", 60_000)
      await s.vm.restart()
    },
  },
}

export interface VmStack {
  readonly vm: Vm
  readonly worker: LocalWorker
  readonly tunnel: CutProxy
  readonly tap: ChardevTap
  readonly bridge: BridgeProcess
  readonly session: Session
  /** The console sees the guest's agent (caps known) as controller. */
  ready(timeoutMs?: number): Promise<void>
  /** Clipboard console → guest, then guest → console, through the SDK; what went wrong ([] when both arrived). */
  roundTrip(tag: string): Promise<string[]>
  /** A file of `size` bytes to the guest, `fault` injected once `share` of it crossed the chardev. */
  fileRound(fault: FaultName, size: number, share: number): Promise<RoundResult>
  /** A guest clipboard of `size` bytes to the console, `fault` injected once `share` of it crossed the chardev. */
  clipboardRound(fault: FaultName, size: number, share: number): Promise<RoundResult>
  /**
   * Repair after an unrecovered round, so that the next round judges its own fault: the console is closed and a new
   * one connects (what a user reloading the page does).
   */
  reconnectConsole(): Promise<void>
  stop(): Promise<void>
}

export const startVmStack = async (o: { readonly vm?: VmOptions; readonly log?: (line: string) => void } = {}): Promise<VmStack> => {
  const log = o.log ?? ((l: string) => console.log(l))
  const undo: Array<() => Promise<unknown>> = []
  const stop = async (): Promise<void> => {
    for (const f of undo.splice(0).reverse()) await f().catch(() => {})
  }
  try {
    const vm = await startVm(o.vm)
    undo.push(() => vm.stop())
    log(`[vm-stack] VM up in ${(vm.bootMs / 1000).toFixed(1)} s (${vm.accel})`)
    const worker = await startWorker()
    undo.push(() => worker.stop())
    const tunnel = await CutProxy.start(Number(new URL(worker.url).port))
    undo.push(() => tunnel.close())
    const dir = await mkdtemp(join(tmpdir(), "vdrelay-tap-"))
    undo.push(() => rm(dir, { recursive: true, force: true }))
    const tap = await ChardevTap.start(join(dir, "tap.sock"), vm.agentSocket)
    undo.push(() => tap.close())
    const bridge = await startBridgeProcess({
      mint: worker.mint,
      tenant: TENANT,
      edgeBase: `ws://127.0.0.1:${tunnel.port}`,
      vms: [{ id: VM_ID, chardev: tap.path, qmp: { socket: vm.qmpSocket, device: AGENT_DEVICE } }],
      reconnect: { baseMs: 50, capMs: 1000 },
    })
    undo.push(() => bridge.stop())
    const openConsole = (): Promise<Session> =>
      connect({
        url: `${worker.wsUrl}/v1/vms/${VM_ID}/console`,
        token: () => worker.mint({ tenant: TENANT, vm: VM_ID, role: "controller", ttl: 3600 }),
        reconnect: { minDelayMs: 50, maxDelayMs: 500 },
      })
    const s = makeStack(vm, worker, tunnel, tap, bridge, await openConsole(), openConsole, stop)
    undo.push(() => s.session.close())
    await s.ready(180_000)
    return s
  } catch (err) {
    await stop()
    throw err
  }
}

const makeStack = (vm: Vm, worker: LocalWorker, tunnel: CutProxy, tap: ChardevTap, bridge: BridgeProcess, first: Session, openConsole: () => Promise<Session>, stop: () => Promise<void>): VmStack => {
  let session = first
  let rounds = 0
  const agentReady = (): boolean => session.state === "open" && session.role === "controller" && session.agent.connected && session.agent.caps !== null
  const ready = (timeoutMs = 120_000): Promise<void> => until(agentReady, "the console sees the guest's agent", timeoutMs)
  const markLog = async (): Promise<LogMark> => ({ bootAt: vm.startedAt, line: await vm.guest.daemonLogMark() })
  const clipboardTargets = async (): Promise<string> => (await vm.guest.exec("export DISPLAY=:0; timeout 5 xclip -o -selection clipboard -t TARGETS")).stdout.toString()
  const agentOwnsClipboard = async (): Promise<boolean> => /text\/plain;charset=utf-8/.test(await clipboardTargets())

  const roundTrip = async (tag: string): Promise<string[]> => {
    const wrong: string[] = []
    await ready()
    // Console → guest: the guest's agent takes the grab, then an X app pastes (the agent asks the console).
    const toGuest = `to-guest ${tag} ${randomBytes(6).toString("hex")} ✓`
    await session.setClipboardText(toGuest)
    // The agent owns the X selection once it took the grab: its TARGETS are GTK's (xclip's own list has no MIME names).
    // (Its log line "received clipboard grab" comes before it owns the selection: a paste right then reads the old owner.)
    if (!(await within(agentOwnsClipboard, 45_000))) wrong.push(`round trip: the guest's agent never took the console's grab (X clipboard TARGETS: ${(await clipboardTargets()).replace(/\n/g, " ")})`)
    else {
      const got = (await vm.guest.getClipboard({ timeoutMs: 30_000 }).catch((e: Error) => Buffer.from(`(xclip failed: ${e.message.slice(0, 80)})`))).toString("utf8")
      if (got !== toGuest) wrong.push(`round trip console→guest: the guest pasted ${JSON.stringify(got.slice(0, 80))}, not ${JSON.stringify(toGuest)}`)
    }
    // Guest → console: the guest copies; the console sees the grab and fetches the text.
    const toConsole = `to-console ${tag} ${randomBytes(6).toString("hex")} ✓`
    let grabbed = 0
    const off = session.on("clipboard-grab", () => void grabbed++)
    try {
      await vm.guest.setClipboard(toConsole)
      if (!(await within(() => grabbed > 0, 45_000))) wrong.push("round trip: the console never saw the guest's grab")
      else {
        const got = await session.requestClipboardText().catch((e: ClientError) => `(failed: ${e.reason})`)
        if (got !== toConsole) wrong.push(`round trip guest→console: the console got ${JSON.stringify(got.slice(0, 80))}, not ${JSON.stringify(toConsole)}`)
      }
    } finally {
      off()
    }
    return wrong
  }

  /** The verdict from what the tap saw, the agent's log, the round trip and the round's own findings. */
  const judge = async (fault: FaultName, direction: Direction, t0: number, logMark: LogMark, tapMark: number, connMark: number, sdk: string, own: { torn: string[]; stale: string[]; okay: boolean }): Promise<RoundResult> => {
    const findings: string[] = []
    const trip = await roundTrip(`${fault}/${direction}`)
    // A guest that booted again since the mark has a new log: all of it is since the fault.
    const sync = await vm.guest.syncErrors(vm.startedAt === logMark.bootAt ? logMark.line : 0)
    const problems: Problem[] = tap.since(tapMark)
    const torn = [...own.torn, ...problems.filter((p) => p.kind === "torn").map((p) => p.text), ...sync.map((l) => `agent log: ${l.trim()}`)]
    const stale = [...own.stale, ...problems.filter((p) => p.kind === "stale").map((p) => p.text)]
    const dup = problems.filter((p) => p.kind === "duplicated").map((p) => p.text)
    findings.push(...torn.map((t) => `torn: ${t}`), ...stale.map((t) => `stale: ${t}`), ...dup.map((t) => `duplicated: ${t}`), ...trip.map((t) => `unrecovered: ${t}`))
    const outcome: Outcome = torn.length > 0 ? "torn" : dup.length > 0 ? "duplicated" : stale.length > 0 ? "stale" : trip.length > 0 ? "unrecovered" : own.okay ? "whole" : "reported"
    const notes = [...tap.summary(connMark), ...tap.notes.splice(0).map((n) => `guest stream: ${n}`)]
    if (trip.length > 0 || sync.length > 0) {
      // What the guest's agent logged, for the finding.
      const logs = await vm.guest.agentLogs()
      notes.push(...logs.daemon.split("\n").slice(-25).map((l) => `vdagentd: ${l}`), ...logs.session.split("\n").slice(-25).map((l) => `vdagent: ${l}`))
    }
    return { fault, direction, outcome, sdk, findings, notes, ms: Date.now() - t0, midway: true }
  }

  const fileRound = async (fault: FaultName, size: number, share: number): Promise<RoundResult> => {
    await ready()
    await vm.guest.clearFiles()
    const t0 = Date.now()
    const n = ++rounds
    const logMark = await markLog()
    const tapMark = tap.mark()
    const connMark = Math.max(0, tap.connections.length - 1)
    const name = `${fault}-${n}.bin`
    const data = fileBytes(size, n)
    const ids = new Set(tap.transferIds())
    const up0 = tap.up
    const t = session.sendFile({ name, data })
    await Promise.race([tap.when("up", up0 + Math.round(share * size)), t.done.catch(() => {})])
    const midway = t.active
    const injectedAt = Date.now()
    let doneAt = 0
    void t.done.then(() => (doneAt = Date.now()), () => {})
    await FAULTS[fault].inject(stack)
    const sdk = await t.done.then(() => "done", (e: ClientError) => `failed: ${e.reason}`)
    await ready()
    const torn: string[] = []
    const stale: string[] = []
    const id = tap.transferIds().find((i) => !ids.has(i))
    const handed = id === undefined ? undefined : tap.transfer(id, data)
    let lostWithGuest = false
    if (sdk === "done") {
      const files = (await vm.guest.files()).filter((f) => f.name === name)
      const exact = files.length === 1 && files[0]!.size === data.length && files[0]!.sha256 === sha256(data)
      // A transfer can finish while the guest shuts down (a poweroff or reset takes seconds under TCG, and the agent runs
      // until it is stopped): the agent said SUCCESS for bytes the tap saw handed exactly once, then the reboot emptied
      // its RAM-backed folder (the guest booted again since the round's mark, as judge() reads it). That is a whole
      // delivery; anything else is not.
      lostWithGuest = !exact && files.length === 0 && handed?.shape === "exact" && !handed.cancelled && vm.startedAt !== logMark.bootAt
      if (!exact && !lostWithGuest) torn.push(`file reported done, the guest holds ${JSON.stringify(files.map((f) => [f.name, f.size, f.sha256.slice(0, 12)]))}; the chardev was handed ${handed?.shape ?? "no START"}`)
    } else {
      // The agent, told (FILE_XFER_STATUS) or having lost its client, removes what it had of the file.
      const base = name.replace(/\.bin$/, "")
      const gone = await within(async () => !(await vm.guest.files()).some((f) => f.name.startsWith(base)), 60_000)
      if (!gone) torn.push(`transfer ${sdk}, a partial file stays in the guest: ${JSON.stringify((await vm.guest.files()).map((f) => [f.name, f.size]))}; handed ${handed?.shape ?? "no START"}, cancel ${handed?.cancelled ?? false}`)
      if (handed !== undefined && handed.shape.startsWith("differs")) torn.push(`transfer failed, the chardev was handed ${handed.shape}`)
    }
    const r = await judge(fault, "file-to-guest", t0, logMark, tapMark, connMark, sdk, { torn, stale, okay: sdk === "done" })
    const lost = lostWithGuest ? [`done ${doneAt - injectedAt} ms after the fault began, before the guest went down: the agent's SUCCESS for bytes handed exactly once; its folder went with the reboot`] : []
    return { ...r, midway, notes: [`handed to the chardev: ${handed === undefined ? "no START" : `${handed.got} B, ${handed.shape}, cancel ${handed.cancelled}`}`, ...lost, ...r.notes] }
  }

  const clipboardRound = async (fault: FaultName, size: number, share: number): Promise<RoundResult> => {
    await ready()
    const t0 = Date.now()
    const n = ++rounds
    const logMark = await markLog()
    const tapMark = tap.mark()
    const connMark = Math.max(0, tap.connections.length - 1)
    const text = bigText(size, `${fault}#${n}:${randomBytes(4).toString("hex")}`)
    let grabbed = 0
    const off = session.on("clipboard-grab", () => void grabbed++)
    try {
      await vm.guest.setClipboard(text)
      // A console that never sees the guest's copy (e.g. grab serials out of step after an earlier fault) is a finding.
      if (!(await within(() => grabbed > 0, 45_000))) {
        const trip = [`before the fault: the console never saw the guest's grab of ${text.length} B`]
        return { fault, direction: "clipboard-to-console", outcome: "unrecovered", sdk: "no grab", findings: trip.map((t) => `unrecovered: ${t}`), notes: tap.summary(connMark), ms: Date.now() - t0, midway: false }
      }
    } finally {
      off()
    }
    const down0 = tap.down
    let settled = false
    const req = session.requestClipboardText().then(
      (got) => ((settled = true), got === text ? "text" : `text of ${got.length} B, not the ${text.length} B copied`),
      (e: ClientError) => ((settled = true), `failed: ${e.reason}`),
    )
    await Promise.race([tap.when("down", down0 + Math.round(share * size)), req])
    const midway = !settled
    await FAULTS[fault].inject(stack)
    // A request the relay lost track of must still settle: an interrupted link or a lost agent rejects it.
    const sdk = await Promise.race([req, new Promise<string>((r) => setTimeout(() => r("never settled (120 s)"), 120_000))])
    await ready()
    const torn: string[] = []
    if (sdk.startsWith("text of")) torn.push(`the console got a ${sdk}`)
    if (sdk.startsWith("never")) torn.push(`the clipboard request ${sdk}`)
    return { ...(await judge(fault, "clipboard-to-console", t0, logMark, tapMark, connMark, sdk, { torn, stale: [], okay: sdk === "text" })), midway }
  }

  /** A fresh controller console: it announces with request=1, so it and the agent start their grab serials again. */
  const reconnectConsole = async (): Promise<void> => {
    await session.close()
    session = await openConsole()
    await ready()
  }

  const stack: VmStack = {
    vm,
    worker,
    tunnel,
    tap,
    bridge,
    get session() {
      return session
    },
    ready,
    roundTrip,
    fileRound,
    clipboardRound,
    reconnectConsole,
    stop,
  }
  return stack
}

/** Counts per fault and direction: "agent-restart file-to-guest: 3 whole, 1 reported, 0 torn, 0 stale, 0 duplicated". */
export const tally = (results: ReadonlyArray<RoundResult>): string[] => {
  const keys = [...new Set(results.map((r) => `${r.fault} ${r.direction}`))]
  return keys.map((k) => {
    const rs = results.filter((r) => `${r.fault} ${r.direction}` === k)
    const c = (o: Outcome): number => rs.filter((r) => r.outcome === o).length
    return `${k}: ${rs.length} rounds: ${c("whole")} whole, ${c("reported")} reported, ${c("torn")} torn, ${c("stale")} stale, ${c("duplicated")} duplicated, ${c("unrecovered")} unrecovered (round trip failed)`
  })
}

/** The round left the clipboard broken (whatever else it found): a new console must start the next round clean. */
export const needsRepair = (r: RoundResult): boolean => r.findings.some((f) => f.startsWith("unrecovered:"))

export const describeRound = (r: RoundResult): string =>
  [`[lifecycle] ${r.fault} ${r.direction}: ${r.outcome} (sdk: ${r.sdk})${r.midway ? "" : " [fault landed after the message]"} in ${(r.ms / 1000).toFixed(1)} s`, ...r.findings.map((f) => `    ${f}`), ...r.notes.map((n) => `    · ${n}`)].join("\n")
