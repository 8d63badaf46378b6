// PortWatch: an event while the port is believed open is a close (reported at once, before the query); late events of
// reopens a query already reported add nothing.
import { describe, expect, it } from "vitest"
import { PortWatch } from "../../../src/bridge/port-watch.ts"

describe("PortWatch", () => {
  it("a plain close is reported from the event; a plain open from the query", () => {
    const w = new PortWatch()
    expect(w.event(false, "open")).toBe(true)
    w.queried("closed", "closed")
    expect(w.event(true, "closed")).toBe(false)
    w.queried("open", "closed")
    expect(w.event(false, "open")).toBe(true) // the next close: no event was absorbed on the way
  })

  it("a close whose query finds the port open again: the parked open event is absorbed", () => {
    const w = new PortWatch()
    expect(w.event(false, "open")).toBe(true) // reported closed at once
    w.queried("open", "closed") // the guest already reopened: reported open
    expect(w.event(true, "open")).toBe(false) // QEMU delivers the reopen's event a second later
    expect(w.event(true, "open")).toBe(true) // a later open event while open is a folded close+open again
  })

  it("an open event while open (its close folded into it) is a close; its own query's open owes no event", () => {
    const w = new PortWatch()
    expect(w.event(true, "open")).toBe(true)
    w.queried("open", "closed")
    expect(w.event(true, "open")).toBe(true) // the next folded reopen is not absorbed
  })

  it("an open event that arrives while a query is in flight is not owed again by that query", () => {
    const w = new PortWatch()
    expect(w.event(true, "closed")).toBe(false) // the reopen's event, before the query in flight returns
    w.queried("open", "closed")
    expect(w.event(true, "open")).toBe(true)
  })

  it("a close found by a poll, then a reopen found by a poll: the reopen's late event is absorbed, not a close", () => {
    const w = new PortWatch()
    w.queried("closed", "open")
    w.queried("open", "closed")
    expect(w.event(true, "open")).toBe(false)
  })

  it("a second quick reopen inside the same rate-limit window is not absorbed as the first one's late event", () => {
    // Found in e2e (bridge-relay, fresh clone): polls saw reopen 1; the guest closed and reopened again ~300 ms later,
    // faster than a poll; QEMU flushed ONE open:true event, stamped at reopen 2. Reading it as reopen 1's owed event
    // left the bridge unaware, so the relay never asked the reopened agent for its caps and the daemon waited forever.
    const w = new PortWatch()
    w.queried("closed", "open", 1_000)
    w.queried("open", "closed", 1_010)
    expect(w.event(true, "open", 1_300)).toBe(true)
    // Stamped at or before the query that saw reopen 1: that reopen's own event, absorbed.
    const v = new PortWatch()
    v.queried("closed", "open", 1_000)
    v.queried("open", "closed", 1_010)
    expect(v.event(true, "open", 1_005)).toBe(false)
  })

  it("nothing owed at start: the first query just states the level", () => {
    const w = new PortWatch()
    w.queried("open", "unknown")
    expect(w.event(false, "open")).toBe(true)
  })
})
