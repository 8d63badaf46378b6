// Reading QEMU's VSERPORT_CHANGE right: events are rate limited (1/s per device, only the latest kept, spec §12), so a
// quick close+open can arrive as one open:true event, and the event of a reopen can arrive after a query already found
// the port open. Any event while the port is believed open means it closed since: the bridge reports "closed" at once
// (and hangs up the chardev), and the query that follows reports "open" if the guest already reopened.
import type { PortLevel } from "../link/types.ts"

export class PortWatch {
  /** An open:true event arrived since the port was last reported closed (it is the event of the latest reopen). */
  private openSinceClose = false
  /** A reopen was learnt from a query before its event: QEMU is holding that open:true event back. */
  private openEventOwed = false
  /** When that query answered (ms, wall clock): a held event stamped later is of another, later reopen. */
  private owedSince = 0

  /**
   * A VSERPORT_CHANGE for our device, given the level we currently report, and the time QEMU stamped on it (ms, wall
   * clock: QEMU stamps an event when the change happens and keeps that stamp while the rate limit holds it back).
   * Returns whether it shows the port closed since it was last seen open: the caller then reports "closed" at once,
   * without waiting for the query.
   */
  event(open: boolean, level: PortLevel, stampedAt?: number): boolean {
    if (open && this.openEventOwed) {
      this.openEventOwed = false
      // The late event of the reopen a query already reported, unless QEMU stamped it after that query: then the guest
      // closed and reopened again inside the same rate-limit window, and the one event stands for both reopens.
      if (stampedAt === undefined || stampedAt <= this.owedSince) return false
    }
    // QEMU emits on changes only: any event while we believe the port open means it closed since.
    const closed = level === "open"
    if (closed) this.openSinceClose = false
    if (open) this.openSinceClose = true
    return closed
  }

  /**
   * The port went away without a VSERPORT_CHANGE (DEVICE_DELETED) or with the guest itself (RESET): the next open:true
   * is the event of a new open, not a close.
   */
  lost(): void {
    this.openSinceClose = false
    this.openEventOwed = false
  }

  /** A query found `result` (`frontend-open`) while we report `level`; the caller reports `result`. */
  queried(result: PortLevel, level: PortLevel, now: number = Date.now()): void {
    if (result === "closed" && level === "open") this.openSinceClose = false
    // A reopen seen before its event: that event will come late (rate limit) and must not read as another close.
    if (result === "open" && level === "closed" && !this.openSinceClose) {
      this.openEventOwed = true
      this.owedSince = now
    }
  }
}
