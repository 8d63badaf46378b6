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

  it("says which events show the port closed since it was last seen open (the bridge acts before the query)", () => {
    const w = new PortWatch()
    expect(w.event(false, "open")).toBe(true)
    expect(w.event(true, "closed")).toBe(false) // a reopen: nothing was open to be closed
    expect(w.event(false, "closed")).toBe(false)
    expect(w.event(true, "open")).toBe(true) // a close folded into this open event
    w.take()
    expect(w.queried("open", "closed", { closedWhileOpen: false, openEvent: false })).toEqual(["open"])
    expect(w.event(true, "open")).toBe(false) // the late event of the reopen the query found
  })
})
