// Live migration as one VM's bridge sees it (docs/migration.md, spec §13): what QMP says of its QEMU (`inmigrate`,
// MIGRATION, STOP, RESUME) decides whether the bridge may open its tunnel, may write to the guest, must read the chardev
// without backpressure, hands the agent connection over (source) or continues it (destination). Socket-free: VmCore
// feeds it and asks it; `Rebase` maps a destination's own positions onto the relay's stream.
import type { BridgeToRelay, RelayToBridge } from "../link/types.ts"

/**
 * none: not migrating. incoming: QEMU is a destination not yet resumed (`inmigrate`): no tunnel, the source's bridge
 * holds the VM. resumed: the destination runs; the tunnel opens with `continues` once the guest port is open again.
 * outgoing: this QEMU is migrating away: no guest write (what reaches the socket after STOP is lost, spec §13), and
 * reads without backpressure (a backlog QEMU holds at STOP reaches both sockets). completed: stopped and migrated; the
 * handover is sent once every byte read is sent. retired: handed over; no tunnel until QEMU runs here again.
 */
export type MigrationRole = "none" | "incoming" | "resumed" | "outgoing" | "completed" | "retired"

/** While migrating away the chardev is read up to this many bytes past the relay's window (then paused: reported). */
export const MIGRATION_READ_BYTES = 64 * 1024 * 1024
/** After MIGRATION completed the source socket must stay silent this long (or reach EOF) before the handover. */
export const HANDOVER_QUIET_MS = 150
/** How long after RESUME a destination waits for the guest port's open before opening its tunnel anyway. */
export const PORT_WAIT_MS = 3_000
/**
 * After hanging up for a clean start (the relay did not continue the source's connection), the destination reconnects
 * once the guest's agent has closed its port (it saw the hang-up and reset its parsers) or after this long. Reconnecting
 * at once hid the hang-up from the real agent (spec §12: a polling guest may miss a close+open), which then read the
 * new connection's bytes as the rest of the source's torn message and fell silent (seen on the real VM).
 */
export const CLEAN_START_WAIT_MS = 10_000
/** How long a destination says `continues` (the relay refuses it while the source holds the VM); then a plain hello. */
export const CONTINUE_FOR_MS = 30_000
/**
 * With QMP configured, the tunnel waits for QEMU's run state: a host where the VM is not (yet) running must not take
 * the VM's link over from the host where it runs (the destination is configured before the VM arrives). Once the
 * chardev has been connected this long without QMP answering, the tunnel opens anyway (a broken monitor).
 */
export const STATUS_WAIT_MS = 5_000

export class Migration {
  role: MigrationRole = "none"
  /** Whether QMP reported QEMU's run state since start (or there is no QMP: never waited for). */
  private statusKnown = false
  private resumedAt = 0
  /**
   * When the current chardev connection was made. One made before RESUME (QMP may tell `inmigrate` after it connected)
   * was there when the guest resumed, so it carries the guest's stream on from the source's; one made after RESUME
   * missed a guest write (spec §13) and is a new connection.
   */
  private chardevSince: number | undefined
  private waiters: Array<() => void> = []
  /** Reading stalled while migrating away: QEMU may have held guest bytes at STOP that the destination sends too. */
  backlogRisk = false

  constructor(
    private readonly onChange: (role: MigrationRole, cause: string) => void,
    /** QEMU stopped (STOP): what is not in the guest by now is lost on this host. */
    private readonly onStop: () => void = () => {},
  ) {}

  /** No QMP for this VM: nothing is known of migrations, and the tunnel never waits. */
  noQmp(): void {
    this.statusKnown = true
    this.wake()
  }

  /** QMP `query-status` answered (at every QMP connect). */
  status(status: string, now: number): void {
    this.statusKnown = true
    if (status === "inmigrate") this.set("incoming", "query-status inmigrate")
    else if (status === "postmigrate" && this.role !== "completed") this.set("retired", "query-status postmigrate")
    else if (status === "running" && this.role === "incoming") this.resumed(now, "query-status running")
    // Running here again after a handover (restarted, or resumed by hand): an ordinary connection, no continuation.
    else if (status === "running" && this.role === "retired") this.set("none", "query-status running")
    this.wake()
  }

  /** A QMP event; returns whether it was one of the migration's. */
  event(name: string, data: Record<string, unknown> | undefined, now: number): boolean {
    if (name === "RESUME") {
      if (this.role === "incoming") this.resumed(now, "RESUME")
      // A migration that failed after STOP resumes the source (spec §13: not observed, but QEMU does so).
      else if (this.role === "outgoing" || this.role === "completed" || this.role === "retired") this.set("none", "RESUME on the source")
      return true
    }
    if (name === "STOP") {
      if (this.role === "outgoing") this.onStop()
      return true
    }
    if (name !== "MIGRATION") return false
    const st = typeof data?.status === "string" ? data.status : ""
    // The destination sees MIGRATION active/completed too: only RESUME matters there.
    if (this.role === "incoming" || this.role === "resumed" || this.role === "retired") return true
    if (st === "setup" || st === "active" || st === "pre-switchover" || st === "device") {
      if (this.role === "none") this.set("outgoing", `MIGRATION ${st}`)
    } else if (st === "completed") {
      if (this.role === "outgoing" || this.role === "none") this.set("completed", "MIGRATION completed")
    } else if (st === "cancelled" || st === "failed") {
      if (this.role === "outgoing") this.set("none", `MIGRATION ${st}`)
    }
    return true
  }

  /** The handover was sent: no tunnel until this QEMU runs again. */
  handedOver(): void {
    this.set("retired", "handed over")
  }

  /** The relay answered a `continues` hello (with bases or as a new connection): the migration is over here. */
  continued(): void {
    if (this.role === "resumed") this.set("none", "continued on the relay")
  }

  get writesHeld(): boolean {
    return this.role === "outgoing" || this.role === "completed" || this.role === "retired" || this.role === "incoming"
  }

  get unboundedReads(): boolean {
    return this.role === "outgoing" || this.role === "completed"
  }

  /** A chardev connection was made (each is a new local epoch). */
  chardevConnected(now: number): void {
    this.chardevSince = now
  }

  /** Whether the next hello says `continues`. */
  continues(now: number): boolean {
    return this.role === "resumed" && this.chardevSince !== undefined && this.chardevSince < this.resumedAt && now - this.resumedAt < CONTINUE_FOR_MS
  }

  /** Whether the tunnel may open now, given the guest port level. */
  mayLink(portOpen: boolean, now: number): boolean {
    if (!this.statusKnown) return false
    if (this.role === "incoming" || this.role === "retired") return false
    if (this.role === "resumed") return portOpen || now - this.resumedAt >= PORT_WAIT_MS
    return true
  }

  /** Resolves once `allowed()` holds; re-checked on every change and every 100 ms (the port and status waits). */
  waitLink(allowed: () => boolean, now: () => number): Promise<void> {
    return new Promise((ok) => {
      const check = (): boolean => {
        if (!this.statusKnown && this.chardevSince !== undefined && now() - this.chardevSince >= STATUS_WAIT_MS) this.statusKnown = true
        if (!allowed()) return false
        clearInterval(timer)
        this.waiters = this.waiters.filter((w) => w !== wake)
        ok()
        return true
      }
      const wake = (): void => void check()
      const timer = setInterval(wake, 100)
      this.waiters.push(wake)
      check()
    })
  }

  wake(): void {
    for (const w of [...this.waiters]) w()
  }

  private resumed(now: number, cause: string): void {
    this.resumedAt = now
    this.set("resumed", cause)
  }

  private set(role: MigrationRole, cause: string): void {
    if (role === this.role) return
    if (role === "outgoing") this.backlogRisk = false
    this.role = role
    this.onChange(role, cause)
    this.wake()
  }
}

/**
 * A destination's chardev connection continues the relay's stream from `agentBase` (agent bytes) and `guestBase`
 * (guest-bound bytes) of the relay's epoch: frames of the local epoch are moved onto the relay's, and back.
 */
export class Rebase {
  private at: { local: number; relay: number; agentBase: number; guestBase: number } | undefined

  set(local: number, relay: number, agentBase: number, guestBase: number): void {
    this.at = { local, relay, agentBase, guestBase }
  }

  clear(): void {
    this.at = undefined
  }

  get active(): boolean {
    return this.at !== undefined
  }

  out(f: BridgeToRelay): BridgeToRelay {
    const b = this.at
    if (b === undefined || f.t === "ping") return f
    if (f.t === "hello") return f.epoch === b.local ? { ...f, epoch: b.relay, from: f.from + b.agentBase, wrote: f.wrote + b.guestBase } : f
    if (f.epoch !== b.local) return f
    switch (f.t) {
      case "data": return { ...f, epoch: b.relay, pos: f.pos + b.agentBase }
      case "wrote": return { ...f, epoch: b.relay, pos: f.pos + b.guestBase, ...(f.server !== undefined ? { server: f.server + b.guestBase } : {}) }
      case "handover": return { ...f, epoch: b.relay, end: f.end + b.agentBase }
      case "chardev":
      case "port":
        return { ...f, epoch: b.relay }
    }
  }

  in(f: RelayToBridge): RelayToBridge {
    const b = this.at
    if (b === undefined || f.t === "pong" || f.t === "error" || f.epoch !== b.relay) return f
    switch (f.t) {
      case "welcome": return { t: "welcome", v: f.v, epoch: b.local, ack: Math.max(0, f.ack - b.agentBase), window: f.window }
      case "ack": return { ...f, epoch: b.local, pos: Math.max(0, f.pos - b.agentBase) }
      // Below the base lies the source's stream: the bridge cannot replay it (VmCore resynchronises).
      case "rewind": return { ...f, epoch: b.local, pos: f.pos - b.agentBase }
      case "write":
      case "abort":
        return { ...f, epoch: b.local, pos: f.pos - b.guestBase }
    }
  }
}

const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0

/**
 * Which guest ports have a message partly handed to the chardev, from the chunk-aligned writes themselves (VDIChunk
 * header: port, size; a message's first chunk starts with VDAgentMessage: protocol, type, opaque, size). Migrating away,
 * the source bridge still finishes such a message: stopping in its middle leaves the guest's agent with a prefix that
 * whatever the destination writes next would continue — a torn message (seen on the real VM: "chunk larger than
 * message, lost sync").
 */
export class MessageEdges {
  private readonly remaining = new Map<number, number>()

  /** A write of whole chunks. */
  wrote(bytes: Uint8Array): void {
    for (let at = 0; at + 8 <= bytes.length; ) {
      const port = u32(bytes, at)
      const size = u32(bytes, at + 4)
      let left = this.remaining.get(port) ?? 0
      if (left === 0 && at + 8 + 20 <= bytes.length) left = 20 + u32(bytes, at + 8 + 16)
      left = Math.max(0, left - size)
      if (left === 0) this.remaining.delete(port)
      else this.remaining.set(port, left)
      at += 8 + size
    }
  }

  /** Some port's message is partly written. */
  get mid(): boolean {
    return this.remaining.size > 0
  }

  reset(): void {
    this.remaining.clear()
  }
}
