// PortWatch: folded VSERPORT_CHANGE sequences become close+open exactly once; late events of known reopens add nothing.
import { describe, expect, it } from "vitest"
import { PortWatch } from "../../../src/bridge/port-watch.ts"

describe("PortWatch", () => {
  it("a plain close, then a plain open", () => {
    const w = new PortWatch()
    w.event(false, "open")
    expect(w.queried("closed", "open", w.take())).toEqual(["closed"])
    w.event(true, "closed")
    expect(w.queried("open", "closed", w.take())).toEqual(["open"])
  })

  it("a close whose query finds the port open again: close+open, and the parked open event is absorbed", () => {
    const w = new PortWatch()
    w.event(false, "open")
    expect(w.queried("open", "open", w.take())).toEqual(["closed", "open"])
    w.event(true, "open") // QEMU delivers the reopen's event a second later
    expect(w.queried("open", "open", w.take())).toEqual(["open"])
  })

  it("an open event while open (its close folded into it): close+open", () => {
    const w = new PortWatch()
    w.event(true, "open")
    expect(w.queried("open", "open", w.take())).toEqual(["closed", "open"])
  })

  it("a reopen found by a query before its event (agent bytes while closed): the event is absorbed", () => {
    const w = new PortWatch()
    expect(w.queried("open", "closed", w.take())).toEqual(["open"])
    w.event(true, "open")
    expect(w.queried("open", "open", w.take())).toEqual(["open"])
  })

  it("nothing owed at start: the first query just states the level", () => {
    const w = new PortWatch()
    expect(w.queried("open", "unknown", w.take())).toEqual(["open"])
    w.event(false, "open")
    expect(w.queried("closed", "open", w.take())).toEqual(["closed"])
  })
})
