// The guest port's level as libvirt shows it, fed to the VM's core the way the QMP session feeds it (qmp.ts). Two
// sources: QEMU's VSERPORT_CHANGE passed through by libvirt (`virsh qemu-monitor-event`, which libvirt does not mark as
// tainting) and the channel's `state` in the live domain XML, which libvirt sets from those same events in a worker
// thread. libvirt offers nothing like query-chardev without tainting the domain, so the XML is the truth the bridge
// re-reads: after every event (once libvirt has applied it), at start, when agent bytes come from a port believed
// closed, and every `reconcileMs`. QEMU rate-limits the event (1/s per device, only the latest kept, spec §12), so a
// change can reach the bridge up to 1 s late; docs/operations.md ("libvirt") says what that costs next to QMP.
import type { PortLevel } from "../link/types.ts"
import { PortWatch } from "./port-watch.ts"

/** What the watcher drives: VmCore's port interface. */
export interface PortSink {
  readonly port: PortLevel
  portLevel(level: PortLevel, cause: string): void
  setPortProbe(probe: (() => void) | undefined): void
}

/**
 * libvirt applies a VSERPORT_CHANGE to the XML in a worker thread, after it has passed the event on: an XML read that
 * contradicts the latest event within this long of it may predate the update, and is not taken as the truth.
 */
export const SETTLE_MS = 1_500
/** A read to confirm each event is made this long after the last one (coalesced). */
const CONFIRM_AFTER_MS = SETTLE_MS + 100
/**
 * Agent bytes from a port believed closed mean the guest reopened and QEMU holds the open event back (≤ 1 s): wait this
 * long for it before taking the XML's word, so the relay hears "open" before the new agent's first message.
 */
const PROBE_WAIT_MS = 1_300

export class LibvirtPortWatch {
  private readonly watch = new PortWatch()
  /** When the latest event arrived (ms) and the level it reported. */
  private lastEventAt = Number.NEGATIVE_INFINITY
  private lastEventLevel: PortLevel = "unknown"
  private confirmTimer: ReturnType<typeof setTimeout> | undefined
  private probeTimer: ReturnType<typeof setTimeout> | undefined
  private ended = false

  constructor(
    private readonly core: PortSink,
    /** Asks for the domain XML to be read; the answer comes back through `xmlState`. */
    private readonly readXml: (cause: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    core.setPortProbe(() => this.probe())
  }

  /** A VSERPORT_CHANGE for the agent channel's device, with QEMU's timestamp (ms). */
  serialChange(open: boolean, stampMs: number | undefined): void {
    if (this.ended) return
    // Any event while the port is believed open means it closed since (events are sent on changes only): act on the
    // close at once, as qmp.ts does; the event's own level is then QEMU's latest, as a query would find it.
    if (this.watch.event(open, this.core.port, stampMs)) this.core.portLevel("closed", "VSERPORT_CHANGE via libvirt")
    const level: PortLevel = open ? "open" : "closed"
    this.lastEventAt = this.now()
    this.lastEventLevel = level
    this.clearProbe()
    this.report(level, "VSERPORT_CHANGE via libvirt")
    clearTimeout(this.confirmTimer)
    this.confirmTimer = setTimeout(() => this.readXml("confirm VSERPORT_CHANGE"), CONFIRM_AFTER_MS)
  }

  /**
   * The channel's state in an XML read that started at `readStartedAt`. A read that contradicts the latest event and
   * started before libvirt can be trusted to have applied it is dropped (and read again once it has).
   */
  xmlState(level: PortLevel, readStartedAt: number, cause: string): void {
    if (this.ended) return
    if (level !== this.lastEventLevel && readStartedAt < this.lastEventAt + SETTLE_MS) {
      clearTimeout(this.confirmTimer)
      this.confirmTimer = setTimeout(() => this.readXml("confirm VSERPORT_CHANGE"), Math.max(0, this.lastEventAt + CONFIRM_AFTER_MS - this.now()))
      return
    }
    this.clearProbe()
    this.report(level, cause)
  }

  /** The domain's QEMU is gone (stopped, crashed, migrated away) or its guest was reset: no guest has the port open. */
  guestGone(cause: string): void {
    if (this.ended) return
    this.clearProbe()
    this.report("closed", cause)
  }

  end(): void {
    this.ended = true
    clearTimeout(this.confirmTimer)
    this.clearProbe()
    this.core.setPortProbe(undefined)
  }

  private report(level: PortLevel, cause: string): void {
    this.watch.queried(level, this.core.port, this.now())
    this.core.portLevel(level, cause)
  }

  /** VmCore holds agent bytes from a port it believes closed until it hears a level: the event, or the XML. */
  private probe(): void {
    if (this.ended || this.probeTimer !== undefined) return
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined
      this.readXml("agent bytes while closed")
    }, PROBE_WAIT_MS)
  }

  private clearProbe(): void {
    clearTimeout(this.probeTimer)
    this.probeTimer = undefined
  }
}
