// Reading QEMU's VSERPORT_CHANGE right: events are rate limited (1/s per device, only the latest kept, spec §12), so a
// quick close+open can arrive as one event, or as a close whose query already finds the port open again. Either way
// the guest's agent reopened its port (and reset its parsers): that is reported as a close followed by an open.
import type { PortLevel } from "../link/types.ts"

/** What happened since the last query started, captured when the next one starts. */
export interface EventsSeen {
  /** An event showed the port closed at some point while we believed it open. */
  readonly closedWhileOpen: boolean
  /** An open:true event arrived (it is the event of the latest reopen). */
  readonly openEvent: boolean
}

export class PortWatch {
  private closedWhileOpen = false
  private openEvent = false
  /** A reopen was learnt from a query before its event: QEMU is holding that open:true event back. */
  private openEventOwed = false

  /**
   * A VSERPORT_CHANGE for our device, given the level we currently report. Returns whether it shows the port closed
   * since it was last seen open (the bridge then need not wait for the query to know bytes may be stranded).
   */
  event(open: boolean, level: PortLevel): boolean {
    if (open && this.openEventOwed) {
      this.openEventOwed = false // the late event of a reopen already reported
      return false
    }
    if (open) this.openEvent = true
    // QEMU emits on changes only: any event while we believe the port open means it closed since.
    if (level === "open") this.closedWhileOpen = true
    return level === "open"
  }

  /** Called as a query-chardev starts: the events it has to account for. */
  take(): EventsSeen {
    const seen = { closedWhileOpen: this.closedWhileOpen, openEvent: this.openEvent }
    this.closedWhileOpen = this.openEvent = false
    return seen
  }

  /** The levels to report, in order, for a query result (`frontend-open`) given the current level. */
  queried(result: PortLevel, level: PortLevel, seen: EventsSeen): ReadonlyArray<PortLevel> {
    const bounce = seen.closedWhileOpen && result === "open" && level === "open"
    const reopened = bounce || (level === "closed" && result === "open")
    if (reopened && !seen.openEvent) this.openEventOwed = true
    return bounce ? ["closed", "open"] : [result]
  }
}
