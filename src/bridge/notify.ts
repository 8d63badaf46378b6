// The systemd notification protocol (sd_notify(3)): datagrams of "KEY=VALUE\n…" to the AF_UNIX SOCK_DGRAM socket named
// by $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). Node cannot send a UNIX datagram (its `dgram` module
// is UDP only, `net` is SOCK_STREAM only), and a native module is what we will not ship. So each message is handed to
// `systemd-notify` (package systemd, present on every host that has a $NOTIFY_SOCKET to talk to), one at a time and in
// order. Its two known traps, and why they do not bite here (docs/operations.md, "systemd"):
//  - the sender is a child, not the main PID: the unit says NotifyAccess=all (only the bridge and its own short-lived
//    children live in its cgroup);
//  - systemd resolves a sender's unit from its PID, which fails if the sender already exited: systemd-notify (≥ 246,
//    without --no-block) sends BARRIER=1 after the message and waits until the manager has processed both, so it is
//    alive while its message is attributed.
// READY=1, RELOADING=1 + MONOTONIC_USEC, STATUS= and WATCHDOG=1 are what the bridge sends.
import { execFile } from "node:child_process"
import type { Logger } from "./log.ts"

export interface Notifier {
  /** Whether a service manager listens ($NOTIFY_SOCKET set). */
  readonly enabled: boolean
  /** How often to send WATCHDOG=1 (half of $WATCHDOG_USEC), or undefined when no watchdog is asked for us. */
  readonly watchdogMs: number | undefined
  /**
   * Sends one datagram of `fields` (in order, after every earlier one). Resolves when it was delivered or the failure
   * was logged; never rejects. Once STOPPING=1 was sent, later messages are dropped.
   */
  send(fields: ReadonlyArray<readonly [string, string]>): Promise<void>
}

/** CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC wants it (libuv's hrtime reads that clock). */
export const monotonicUsec = (): bigint => process.hrtime.bigint() / 1000n

/** The watchdog interval for this process from the environment sd_watchdog_enabled(3) reads; undefined when off. */
export const watchdogInterval = (env: Readonly<Record<string, string | undefined>>, pid: number): number | undefined => {
  const usec = env.WATCHDOG_USEC === undefined ? NaN : Number(env.WATCHDOG_USEC)
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined
  // WATCHDOG_PID names the process the watchdog is for; a child that inherited the variable must not answer for it.
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== "" && Number(env.WATCHDOG_PID) !== pid) return undefined
  return Math.max(1, Math.floor(usec / 2000))
}

/** A value must not break the line format: one line each (STATUS= texts come from config errors). */
const oneLine = (v: string): string => v.replace(/[\r\n]+/g, " ")

export const systemdNotifier = (
  log: Logger,
  env: Readonly<Record<string, string | undefined>> = process.env,
  command = "systemd-notify",
): Notifier => {
  const socket = env.NOTIFY_SOCKET
  const enabled = socket !== undefined && socket !== ""
  let chain: Promise<void> = Promise.resolve()
  let warned = false
  // Nothing after STOPPING=1: a watchdog tick still queued while the scope closes would only confuse the manager.
  let stopping = false
  const deliver = (fields: ReadonlyArray<readonly [string, string]>): Promise<void> =>
    new Promise((done) => {
      const args = fields.map(([k, v]) => `${k}=${oneLine(v)}`)
      execFile(command, args, { env: { ...env, NOTIFY_SOCKET: socket }, timeout: 10_000 }, (error, _stdout, stderr) => {
        if (error !== null && !warned) {
          // One line, not one per watchdog ping: the service manager will act on the missing messages itself.
          warned = true
          log.log("warn", "notify-failed", { cause: `${command} ${args.join(" ")}: ${stderr.trim() || error.message}` })
        }
        done()
      })
    })
  return {
    enabled,
    watchdogMs: enabled ? watchdogInterval(env, process.pid) : undefined,
    send: (fields) => {
      if (!enabled || stopping) return Promise.resolve()
      if (fields.some(([k, v]) => k === "STOPPING" && v === "1")) stopping = true
      chain = chain.then(() => deliver(fields))
      return chain
    },
  }
}
