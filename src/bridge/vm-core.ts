// One VM's bridge state, free of sockets: the agent tail and its window, the guest-bound assembler, epochs and the
// port level. Shells (chardev, tunnel, QMP) attach ports to it and feed it what happens; it decides what to send,
// write, read, replay or drop.
import { type BridgeToRelay, LINK_VERSION, type PortLevel, type RelayToBridge } from "../link/types.ts"
import { AgentTail } from "./agent-tail.ts"
import type { Limits } from "./config.ts"
import { GuestWriter } from "./guest-writer.ts"
import type { Logger } from "./log.ts"
import type { Metrics } from "./metrics.ts"
import { CLEAN_START_WAIT_MS, HANDOVER_QUIET_MS, MessageEdges, MIGRATION_READ_BYTES, Migration, type MigrationRole, Rebase } from "./migration.ts"
import type { ChardevPort, LinkPort } from "./ports.ts"

export class VmCore {
  epoch = 0
  chardevUp = false
  port: PortLevel = "unknown"
  private readonly tail = new AgentTail()
  private readonly guest: GuestWriter
  private sentPos = 0
  /** Highest agent position ever sent in this epoch: what lies below it and is sent again is a replay. */
  private sentHigh = 0
  private window = 0
  private link: LinkPort | undefined
  private synced = false
  private chardev: ChardevPort | undefined
  private paused = false
  /** Asks QMP for the port level now; set while a QMP session is up. */
  private portProbe: (() => void) | undefined
  /** Agent bytes wait: they arrived while the port was known closed, and QMP is being asked (see agentBytes). */
  private holding = false
  /** Guest-bound bytes handed to the current chardev connection (see guestPortClosed). */
  private handed = 0
  private readonly labels: Record<string, string>
  /** Live migration (migration.ts): what QMP says of this QEMU, and the destination's positions on the relay's stream. */
  readonly migration: Migration
  private readonly rebase = new Rebase()
  /** Messages partly handed to the chardev: a migration's hold waits for their end (migration.ts). */
  private readonly edges = new MessageEdges()
  /** Chardev writes handed and not yet done (the handover waits for them: their bytes may reach the guest). */
  private pendingWrites = 0
  private lastReadAt = 0
  /** The source chardev ended after the migration completed: the handover still sends what was read. */
  private sourceEof: string | undefined
  private handoverTimer: ReturnType<typeof setTimeout> | undefined
  /** The last hello said `continues`. */
  private helloContinues = false
  /** A guest-bound message was partly handed to the chardev when QEMU stopped (the handover says so). */
  private tornAtStop = false
  /** QEMU stopped for the migration's switch: nothing written now reaches the guest (spec §13). */
  private stopped = false
  /**
   * At STOP: guest-bound bytes handed to the socket so far, and how many of them QEMU had not taken (the socket's
   * queue, asked once: `unread`); those never reach the guest. Undefined: not known (yet). The handover waits for it.
   */
  private handedAtStop = 0
  private unreadAtStop: number | undefined
  private stopProbe: Promise<void> | undefined
  /** A hang-up for a clean start is waiting for the guest's agent to close its port (see reconnectReady). */
  private cleanStart: (() => void) | undefined

  constructor(
    readonly vm: string,
    private readonly bridgeName: string,
    private readonly limits: Limits,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.labels = { vm }
    this.migration = new Migration(
      (role, cause) => this.migrationChanged(role, cause),
      () => this.qemuStopped(),
    )
    const self = this
    this.guest = new GuestWriter(vm, limits, log, metrics, {
      get epoch() {
        return self.epoch
      },
      get port() {
        return self.port
      },
      get chardev() {
        // Migrating: no new message is written (spec §13: bytes reaching the source socket after STOP are lost), but one
        // already begun is finished (stopping in it would leave the guest a torn prefix).
        return self.migration.writesHeld && (!self.edges.mid || self.stopped) ? undefined : self.chardev
      },
      sendIfSynced: (frame) => {
        if (this.synced) this.link!.send(frame)
      },
      changed: () => this.updateGauges(),
    })
  }

  // ------------------------------------------------------------------ chardev side

  chardevConnected(chardev: ChardevPort): void {
    // Milliseconds, not seconds: a bridge restarted (a new process, memory lost) must not reuse the epoch of its
    // predecessor's last connection, or the relay would resume that connection and resend into a new one.
    this.epoch = Math.max(this.epoch + 1, Date.now())
    this.handed = 0
    this.pendingWrites = 0
    this.sourceEof = undefined
    this.rebase.clear()
    this.edges.reset()
    this.tornAtStop = this.stopped = false
    this.clearStop()
    this.migration.chardevConnected(Date.now())
    // Counts what is handed to the socket: bytes QEMU may still hold when the guest closes its port (guestPortClosed).
    this.chardev = {
      write: (bytes, done) => {
        this.handed += bytes.length
        this.edges.wrote(bytes)
        this.pendingWrites++
        chardev.write(bytes, (error) => {
          this.pendingWrites--
          done(error)
          if (this.migration.role === "completed") this.tryHandover()
        })
      },
      pause: () => chardev.pause(),
      resume: () => chardev.resume(),
      close: (cause) => chardev.close(cause),
      ...(chardev.unread !== undefined ? { unread: () => chardev.unread!() } : {}),
    }
    this.chardevUp = true
    this.tail.reset()
    this.guest.reset(undefined)
    this.sentPos = this.sentHigh = 0
    this.paused = false
    this.metrics.inc("vdrelay_bridge_chardev_connects_total", this.labels)
    this.metrics.set("vdrelay_bridge_chardev_up", this.labels, 1)
    this.log.log("info", "chardev-connected", { epoch: this.epoch })
    if (this.synced) this.link!.send({ t: "chardev", epoch: this.epoch, up: true })
    this.updateGauges()
  }

  chardevLost(cause: string): void {
    if (!this.chardevUp) return
    // The source QEMU exits after the migration: what was read is still to be sent and handed over first.
    if (this.migration.role === "completed" && this.sourceEof === undefined) {
      this.sourceEof = cause
      this.tryHandover()
      return
    }
    this.pumpAgent()
    this.chardevUp = false
    this.chardev = undefined
    this.holding = false
    const dropped = this.tail.end - this.sentPos
    this.tail.reset()
    this.guest.reset(cause)
    this.metrics.inc("vdrelay_bridge_chardev_disconnects_total", this.labels)
    this.metrics.set("vdrelay_bridge_chardev_up", this.labels, 0)
    this.log.log("warn", "chardev-disconnected", { epoch: this.epoch, cause, unsentAgentBytes: dropped })
    if (this.synced) this.link!.send({ t: "chardev", epoch: this.epoch, up: false })
    this.updateGauges()
  }

  /** Bytes the chardev reader may read now without exceeding the retention bound or the relay's window. */
  get readHeadroom(): number {
    if (!this.chardevUp) return 0
    if (this.migration.unboundedReads) return Math.max(0, MIGRATION_READ_BYTES - this.tail.retained)
    const limit = this.synced ? Math.min(this.window, this.limits.retainBytes) : this.limits.retainBytes
    return Math.max(0, limit - this.tail.retained)
  }

  /** Agent bytes read from the chardev (ownership passes to the core). Returns whether to keep reading. */
  agentBytes(bytes: Uint8Array): boolean {
    if (!this.chardevUp) return false
    // Bytes from a port we believe closed: QEMU's open event lags up to 1 s behind a quick reopen (spec §12), and the
    // relay must hear "open" before the new opener's first words. Hold them until QMP says what the port is now.
    if (this.port === "closed" && this.portProbe !== undefined && !this.holding) {
      this.holding = true
      this.portProbe()
    }
    this.tail.append(bytes)
    this.lastReadAt = Date.now()
    if (this.migration.role === "retired") this.lateBytes(bytes.length)
    this.metrics.inc("vdrelay_bridge_agent_bytes_read_total", this.labels, bytes.length)
    this.pumpAgent()
    this.updateReadGate()
    this.updateGauges()
    return !this.paused
  }

  // ------------------------------------------------------------------ tunnel side

  /** A WebSocket is open: say hello. Partial guest-bound messages were dropped when the last tunnel went away. */
  tunnelOpened(raw: LinkPort): void {
    const rebase = this.rebase
    const link: LinkPort = {
      send: (frame) => raw.send(rebase.out(frame)),
      get congested() {
        return raw.congested
      },
    }
    this.link = link
    this.synced = false
    this.guest.helloSent()
    const continues = this.migration.continues(Date.now())
    this.helloContinues = continues
    link.send({
      t: "hello",
      v: LINK_VERSION,
      bridge: this.bridgeName,
      epoch: this.epoch,
      chardev: this.chardevUp,
      from: this.tail.from,
      wrote: this.guest.committed,
      port: this.port,
      ...(continues ? { continues } : {}),
    })
  }

  tunnelLost(cause: string): void {
    const wasSynced = this.synced
    this.link = undefined
    this.synced = false
    this.guest.tunnelLost(cause)
    this.sentPos = this.tail.from
    this.metrics.set("vdrelay_bridge_tunnel_up", this.labels, 0)
    if (wasSynced) this.metrics.inc("vdrelay_bridge_tunnel_disconnects_total", { ...this.labels, cause: causeLabel(cause) })
    this.updateReadGate()
    this.updateGauges()
  }

  /** A decoded relay frame. Returns an error text when the frame breaks the link protocol (the shell closes). */
  relayFrame(relayed: RelayToBridge): string | undefined {
    if (relayed.t === "welcome" && !this.synced) this.continuedOn(relayed)
    const frame = this.rebase.in(relayed)
    if (frame.t === "welcome") return this.welcome(frame)
    if (!this.synced) return `"${frame.t}" before welcome`
    switch (frame.t) {
      case "ack":
        return this.current(frame.epoch) ? this.ack(frame.pos) : undefined
      case "write":
        if (this.current(frame.epoch)) {
          const key = frame.origin !== undefined && frame.id !== undefined ? { origin: frame.origin, id: frame.id } : undefined
          this.guest.write(frame.pos, frame.port, frame.data, frame.end, key)
        }
        return undefined
      case "abort":
        if (this.current(frame.epoch)) {
          this.guest.abort(frame.port)
        }
        return undefined
      case "rewind":
        return this.current(frame.epoch) ? this.rewind(frame.pos) : undefined
      case "pong":
        return undefined
      case "error":
        this.log.log("warn", "relay-error", { code: frame.code, cause: frame.detail })
        return undefined
    }
  }

  /** The WebSocket flushed: send what the window allows. */
  linkDrained(): void {
    this.pumpAgent()
    if (this.migration.role === "completed") this.tryHandover()
  }

  // ------------------------------------------------------------------ live migration (migration.ts, docs/migration.md)

  /** Whether the tunnel may open now: not while QEMU awaits an incoming migration or has migrated away. */
  mayLink(): boolean {
    return this.migration.mayLink(this.port === "open", Date.now())
  }

  /** The relay's answer to our hello: with bases it continues the source's stream, so our positions move onto it. */
  private continuedOn(w: Extract<RelayToBridge, { t: "welcome" }>): void {
    if (this.migration.role !== "resumed") return
    if (!this.helloContinues) return this.migration.continued()
    if (w.agentBase !== undefined && w.guestBase !== undefined && this.chardevUp) {
      this.rebase.set(this.epoch, w.epoch, w.agentBase, w.guestBase)
      this.metrics.inc("vdrelay_bridge_migration_continued_total", this.labels)
      this.log.log("info", "migration-continued", { epoch: this.epoch, relayEpoch: w.epoch, agentBase: w.agentBase, guestBase: w.guestBase })
      this.migration.continued()
      return
    }
    // Not continued (no handover, or the source stopped mid-message): the guest's agent may hold a prefix of the
    // source's last message, so it must start clean: hang up (it resets its parsers), and start a new connection.
    this.log.log("warn", "migration-not-continued", { epoch: this.epoch, cause: "the relay did not continue the source's connection: hanging up for a clean start" })
    this.migration.continued()
    this.cleanStart ??= () => {}
    this.chardev?.close("migration not continued: a clean start for the guest's agent")
  }

  /**
   * Resolves when the chardev may be connected again after a deliberate hang-up: at once, except after one for a
   * migration's clean start, which waits until the guest's agent closed its port (it noticed, and resets its parsers)
   * or CLEAN_START_WAIT_MS passed (an agent that never notices, e.g. stopped, gets the new connection anyway).
   */
  reconnectReady(): Promise<void> {
    if (this.cleanStart === undefined) return Promise.resolve()
    const started = Date.now()
    return new Promise((ok) => {
      const done = (how: string): void => {
        clearTimeout(timer)
        this.cleanStart = undefined
        this.log.log("info", "migration-clean-start", { epoch: this.epoch, waitedMs: Date.now() - started, how })
        ok()
      }
      const timer = setTimeout(() => done("timeout: the guest port never closed"), CLEAN_START_WAIT_MS)
      this.cleanStart = () => done("the guest's agent closed its port")
      if (this.port === "closed") done("the guest port was already closed")
    })
  }

  private migrationChanged(role: MigrationRole, cause: string): void {
    this.log.log("info", "migration", { role, cause, epoch: this.epoch })
    this.metrics.inc("vdrelay_bridge_migration_transitions_total", { ...this.labels, role })
    if (role === "none") {
      this.tornAtStop = this.stopped = false
      this.clearStop()
    }
    if (role === "none" || role === "outgoing") {
      this.updateReadGate()
      this.guest.pump()
      this.pumpAgent()
    }
    if (role === "completed") this.tryHandover()
  }

  /**
   * Source side: once QEMU stopped and the migration completed, every agent byte read is sent, no chardev write is in
   * flight and the socket has been silent for HANDOVER_QUIET_MS (or ended), the relay is told where the stream ends.
   */
  private tryHandover(): void {
    if (this.migration.role !== "completed" || !this.synced || this.link === undefined) return
    clearTimeout(this.handoverTimer)
    this.handoverTimer = undefined
    if (this.stopProbe !== undefined) return
    // Guest-bound bytes QEMU had not taken at STOP (in the socket or still in Node's queue), and any handed since.
    const untaken = this.unreadAtStop === undefined ? undefined : this.unreadAtStop + this.handed - this.handedAtStop
    // A message still being finished after STOP is lost here anyway (torn), and so are writes QEMU will never take:
    // the handover does not wait for them.
    const lost = this.tornAtStop || (untaken ?? 0) > 0
    if (this.sentPos < this.tail.end || (this.pendingWrites > 0 && !lost) || (this.edges.mid && !lost)) return
    const wait = this.sourceEof !== undefined ? 0 : this.lastReadAt + HANDOVER_QUIET_MS - Date.now()
    if (wait > 0) {
      this.handoverTimer = setTimeout(() => this.tryHandover(), wait)
      return
    }
    this.guest.sendWrote()
    if (untaken !== undefined && untaken > 0) {
      // The guest's agent got a prefix of what was handed: whatever follows on the destination would continue inside
      // it (torn), and what the relay already counted written is gone. Said, counted, and the connection starts clean.
      this.metrics.inc("vdrelay_bridge_migration_untaken_bytes_total", this.labels, untaken)
      this.log.log("warn", "migration-untaken", { epoch: this.epoch, bytes: untaken, cause: "guest-bound bytes QEMU had not taken from the socket at STOP: they never reach the guest" })
    }
    const torn = this.tornAtStop || this.edges.mid || (untaken ?? 0) > 0
    this.link.send({ t: "handover", epoch: this.epoch, end: this.tail.end, ...(torn ? { torn } : {}) })
    this.metrics.inc("vdrelay_bridge_migration_handovers_total", this.labels)
    this.log.log(torn ? "warn" : "info", "migration-handover", { epoch: this.epoch, end: this.tail.end, backlogRisk: this.migration.backlogRisk, torn, untaken: untaken ?? "unknown" })
    this.migration.handedOver()
    const eof = this.sourceEof
    if (eof !== undefined) this.chardevLost(eof)
  }

  /**
   * QEMU stopped for the switch: a message still unfinished is torn, and the socket is asked what QEMU had not taken
   * of what was handed (spec §13: those bytes stay in the source socket). The handover waits for the answer.
   */
  private qemuStopped(): void {
    this.tornAtStop = this.edges.mid
    this.stopped = true
    this.handedAtStop = this.handed
    const unread = this.chardev?.unread
    if (unread === undefined) return
    const epoch = this.epoch
    const probe = unread().then((n) => {
      if (this.stopProbe !== probe || this.epoch !== epoch) return
      this.stopProbe = undefined
      this.unreadAtStop = n
      this.log.log("info", "migration-stop", { epoch, handed: this.handedAtStop, unread: n ?? "unknown", midMessage: this.tornAtStop })
      if (this.migration.role === "completed") this.tryHandover()
    })
    this.stopProbe = probe
  }

  private clearStop(): void {
    this.handedAtStop = 0
    this.unreadAtStop = undefined
    this.stopProbe = undefined
  }

  /** Agent bytes from a source that handed over: QEMU flushed a backlog the destination re-sends (spec §13). */
  private lateBytes(n: number): void {
    this.metrics.inc("vdrelay_bridge_migration_late_bytes_total", this.labels, n)
    this.log.log("warn", "migration-late-bytes", { epoch: this.epoch, bytes: n, cause: "read after the handover: the destination sends them too" })
  }

  get tunnelSynced(): boolean {
    return this.synced
  }

  // ------------------------------------------------------------------ QMP side

  /** QMP is up (`probe` queries the level at once) or gone (undefined). */
  setPortProbe(probe: (() => void) | undefined): void {
    this.portProbe = probe
  }

  /** The port level as QMP reports it (after every query, changed or not). */
  portLevel(level: PortLevel, cause: string): void {
    if (this.holding) {
      this.holding = false
      if (level === this.port) this.pumpAgent()
    }
    if (level === this.port) return
    this.port = level
    if (level === "closed") this.cleanStart?.()
    this.metrics.set("vdrelay_bridge_port_open", this.labels, level === "open" ? 1 : level === "closed" ? 0 : -1)
    this.log.log("info", "guest-port", { port: level, cause })
    if (level === "closed") this.guest.portClosed(cause)
    if (this.synced && level !== "unknown") this.link!.send({ t: "port", epoch: this.epoch, open: level === "open" })
    if (level === "closed") this.guestPortClosed(cause)
    this.guest.sendWrote()
    this.pumpAgent()
    this.guest.pump()
    this.updateGauges()
  }

  /**
   * The guest closed its port at some point since it was last seen open (a close event, or a query finding it closed).
   * QEMU stops reading the chardev socket while the port is closed and hands what the socket holds to the next opener
   * (spec §12): the middle of a message, written before the bridge could know of the close. What QEMU holds is unknown,
   * so if this connection ever carried a guest-bound byte it is hung up at once, which makes QEMU drop those bytes; the
   * supervisor reconnects (a new epoch, as for any chardev loss). Each close with bytes handed ends the connection, so
   * one that carried none since it began holds nothing stale.
   */
  guestPortClosed(cause: string): void {
    const chardev = this.chardev
    if (!this.chardevUp || chardev === undefined || this.handed === 0) return
    this.metrics.inc("vdrelay_bridge_chardev_hangups_total", this.labels)
    this.log.log("info", "chardev-hangup", { epoch: this.epoch, cause, handedBytes: this.handed })
    this.chardevLost(`hung up: guest port closed (${cause})`)
    chardev.close(`hung up: guest port closed (${cause})`)
  }

  // ------------------------------------------------------------------ internals

  private welcome(frame: Extract<RelayToBridge, { t: "welcome" }>): string | undefined {
    if (frame.v !== LINK_VERSION) return `relay speaks link version ${frame.v}, the bridge ${LINK_VERSION}`
    if (this.synced) return this.rewelcome(frame)
    this.window = frame.window
    this.synced = true
    let resumed = false
    if (this.chardevUp) {
      const from = frame.epoch === this.epoch ? frame.ack : 0
      if (from < this.tail.from || from > this.tail.end) {
        this.resyncChardev(`relay resumes epoch ${frame.epoch} at ${frame.ack}; retained [${this.tail.from}, ${this.tail.end}) of epoch ${this.epoch}`)
      } else {
        resumed = frame.epoch === this.epoch && this.sentHigh > 0
        this.tail.release(from)
        this.sentPos = from
      }
    }
    this.metrics.set("vdrelay_bridge_tunnel_up", this.labels, 1)
    this.metrics.inc("vdrelay_bridge_tunnel_connects_total", this.labels)
    if (resumed) this.metrics.inc("vdrelay_bridge_tunnel_resumes_total", this.labels)
    this.log.log("info", resumed ? "tunnel-resumed" : "tunnel-connected", {
      epoch: this.epoch,
      ack: frame.ack,
      window: frame.window,
      replay: this.chardevUp ? this.sentHigh - this.sentPos : 0,
    })
    // The level may have changed between hello and welcome (QMP answers concurrently): state it again.
    if (this.port !== "unknown") this.link!.send({ t: "port", epoch: this.epoch, open: this.port === "open" })
    this.updateReadGate()
    this.pumpAgent()
    this.guest.pump()
    return undefined
  }

  /**
   * A welcome on a synced link: the relay answers a `chardev` frame (a new epoch) with one. Frames already sent on this
   * link are not lost, so it counts as an ack and a window update; a welcome for another epoch is stale.
   */
  private rewelcome(frame: Extract<RelayToBridge, { t: "welcome" }>): string | undefined {
    if (!this.current(frame.epoch)) return undefined
    this.window = frame.window
    const problem = this.ack(frame.ack)
    this.updateReadGate()
    this.pumpAgent()
    return problem
  }

  private current(epoch: number): boolean {
    if (epoch === this.epoch && this.chardevUp) return true
    this.metrics.inc("vdrelay_bridge_link_errors_total", { ...this.labels, reason: "stale-epoch" })
    return false
  }

  private ack(pos: number): string | undefined {
    if (pos > this.tail.end) return `ack ${pos} beyond the agent bytes read (${this.tail.end})`
    if (pos <= this.tail.from) return undefined
    this.tail.release(pos)
    if (this.sentPos < pos) this.sentPos = pos
    this.updateReadGate()
    this.pumpAgent()
    this.updateGauges()
    if (this.migration.role === "completed") this.tryHandover()
    return undefined
  }

  private rewind(pos: number): string | undefined {
    if (pos > this.tail.end) return `rewind ${pos} beyond the agent bytes read (${this.tail.end})`
    if (pos < this.tail.from) {
      this.resyncChardev(`rewind to ${pos} but only [${this.tail.from}, ${this.tail.end}) retained`)
      return undefined
    }
    this.log.log("info", "rewind", { epoch: this.epoch, pos, replay: this.sentHigh - pos })
    this.sentPos = pos
    this.pumpAgent()
    return undefined
  }

  /** The relay needs bytes the bridge no longer has: restart the agent connection rather than hand it a torn stream. */
  private resyncChardev(cause: string): void {
    this.metrics.inc("vdrelay_bridge_link_errors_total", { ...this.labels, reason: "unrecoverable-resume" })
    this.log.log("error", "resume-impossible", { epoch: this.epoch, cause })
    this.chardev?.close(cause)
  }

  private pumpAgent(): void {
    const link = this.link
    if (!this.synced || link === undefined || !this.chardevUp || this.holding) return
    const limit = Math.min(this.tail.end, this.tail.from + this.window)
    while (this.sentPos < limit && !link.congested) {
      const bytes = this.tail.slice(this.sentPos, Math.min(this.limits.frameBytes, limit - this.sentPos))
      link.send({ t: "data", epoch: this.epoch, pos: this.sentPos, bytes })
      const replayed = Math.max(0, Math.min(this.sentHigh, this.sentPos + bytes.length) - this.sentPos)
      if (replayed > 0) this.metrics.inc("vdrelay_bridge_agent_bytes_replayed_total", this.labels, replayed)
      this.metrics.inc("vdrelay_bridge_agent_bytes_sent_total", this.labels, bytes.length)
      this.sentPos += bytes.length
      if (this.sentPos > this.sentHigh) this.sentHigh = this.sentPos
    }
  }

  private updateReadGate(): void {
    const chardev = this.chardev
    if (chardev === undefined) return
    const pause = this.readHeadroom === 0
    if (pause && this.migration.unboundedReads && !this.migration.backlogRisk) {
      this.migration.backlogRisk = true
      this.metrics.inc("vdrelay_bridge_migration_backlog_total", this.labels)
      this.log.log("warn", "migration-backlog", { epoch: this.epoch, cause: `read pause at ${this.tail.retained} bytes while migrating: guest bytes QEMU holds at STOP reach both hosts` })
    }
    if (pause === this.paused) return
    this.paused = pause
    this.metrics.set("vdrelay_bridge_read_paused", this.labels, pause ? 1 : 0)
    if (pause) chardev.pause()
    else chardev.resume()
  }

  private updateGauges(): void {
    this.metrics.set("vdrelay_bridge_retained_bytes", this.labels, this.tail.retained)
    this.metrics.set("vdrelay_bridge_guest_buffered_bytes", this.labels, this.guest.held)
  }
}

/** A bounded label value for the disconnect counter (causes are free text in logs). */
const causeLabel = (cause: string): string => /^[a-z-]+/.exec(cause)?.[0] ?? "other"
