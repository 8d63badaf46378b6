// The relay names each client message for the bridge (hello.origin + message id on its first `write`), so that the
// bridge writes it at most once however often it is sent: whole and streamed messages, held ones written after a
// blip, never the relay's own messages, and nothing for a client that named no origin.
import { describe, expect, it } from "vitest"
import type { RelayToBridge } from "../../../src/link/types.ts"
import { MessageType } from "../../../src/protocol/constants.ts"
import { ready } from "./resume-kit.ts"
import { bytes, concat, u32le } from "./sim.ts"

type Write = Extract<RelayToBridge, { t: "write" }>
const writes = (frames: ReadonlyArray<unknown>): Write[] => frames.filter((f): f is Write => (f as Write).t === "write")

describe("idempotence keys on guest-bound writes", () => {
  it("names a whole message and a streamed one on their first write only", () => {
    const sim = ready({ limits: { bridgeWriteBytes: 2 * 2056 } })
    sim.join("c1")
    const from = sim.bridge.frames.length
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    const b = sim.send("c1", MessageType.Clipboard, concat([u32le(0, 1), bytes(200_000, 3)]), { frag: 30_000 })
    const w = writes(sim.bridge.frames.slice(from)).filter((f) => f.port === 1)
    const named = w.filter((f) => f.origin !== undefined)
    expect(named.map((f) => [f.origin, f.id])).toEqual([["origin-c1", a], ["origin-c1", b]])
    expect(w.length).toBeGreaterThan(3)
    expect(w.filter((f) => f.id === b)).toHaveLength(1)
  })

  it("keeps the name of a message held during a tunnel blip, written when the bridge is back", () => {
    const sim = ready()
    sim.join("c1")
    sim.detachBridge()
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    const from = sim.bridge.frames.length
    sim.attachBridge()
    const named = writes(sim.bridge.frames.slice(from)).filter((f) => f.origin !== undefined)
    expect(named.map((f) => [f.origin, f.id])).toEqual([["origin-c1", a]])
  })

  it("names nothing the relay makes itself (its caps request on a new agent connection)", () => {
    const sim = ready()
    sim.join("c1")
    const from = sim.bridge.frames.length
    sim.chardev(true, 7)
    const w = writes(sim.bridge.frames.slice(from))
    expect(w.length).toBeGreaterThan(0)
    expect(w.every((f) => f.origin === undefined && f.id === undefined)).toBe(true)
  })
})

describe("per-sender order after a resend", () => {
  it("tells resend a later message that arrives before the one asked for again, and writes them in order once it comes", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.bridge.dedupe = false // this bridge really lost the message: nothing of it was written
    const before = sim.bridge.wnext
    const first = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.detachBridge()
    sim.bridge.wnext = before
    sim.bridge.written.pop()
    sim.attachBridge()
    expect(c.sent.get(first)!.fate).toEqual(["resend"])
    // A message the console had already sent behind it arrives before the resend: it must not overtake it.
    const later = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]))
    expect(c.sent.get(later)!.fate).toEqual(["resend"])
    c.nextId = first
    sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]))
    sim.wrote()
    expect(sim.agentGot().filter((m) => m.port === 1).map((m) => m.type).slice(-2)).toEqual([MessageType.ClipboardRelease, MessageType.MonitorsConfig])
    expect(c.sent.get(first)!.fate).toEqual(["ack"])
  })

  it("does not write a message that began before the relay asked for an earlier one again and ended after (found by chaos)", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.bridge.dedupe = false
    const before = sim.bridge.wnext
    const first = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    const body = concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)])
    const later = sim.send("c1", MessageType.MonitorsConfig, body, { frag: 10, stopAfter: 1 })
    sim.detachBridge()
    sim.bridge.wnext = before
    sim.bridge.written.pop()
    sim.attachBridge()
    expect(c.sent.get(first)!.fate).toEqual(["resend"])
    sim.sendRest("c1", later, body, 10, 10)
    expect(c.sent.get(later)!.fate).toEqual(["resend"])
    expect(sim.agentGot(MessageType.MonitorsConfig)).toHaveLength(0)
  })

  it("releases the hold when the console gives the owed message up (abort)", () => {
    const sim = ready()
    const c = sim.join("c1")
    const first = sim.send("c1", MessageType.Clipboard, concat([u32le(0, 1), bytes(200_000)]), { frag: 50_000, stopAfter: 2 })
    sim.detachBridge()
    sim.attachBridge()
    sim.frame("c1", { t: "abort", id: first })
    const later = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.wrote()
    expect(c.sent.get(later)!.fate).toEqual(["ack"])
  })
})

describe("a resend after a crash that lost the relay's answers", () => {
  const setup = (newEpoch: boolean) => {
    const sim = ready()
    sim.join("c1")
    const id = sim.send("c1", MessageType.ClipboardRelease, u32le(0)) // handed to the bridge, no `wrote` yet
    sim.leave("c1", "error") // the crash takes every socket: the seat waits, in storage
    sim.restart()
    if (newEpoch) sim.chardev(true, 9)
    else sim.attachBridge()
    const c2 = sim.resume("c2", "c1")
    sim.frame("c2", { t: "msg", id, type: MessageType.ClipboardRelease, size: 4, data: u32le(0), end: true, again: true })
    return { sim, c2, id }
  }

  it("is not written to a new agent connection: dropped-by-disconnect", () => {
    const { sim, c2, id } = setup(true)
    expect(c2.sent.get(id)?.fate ?? c2.frames.filter((f) => f.t === "notice" && f.id === id).map((f) => f.t === "notice" && f.code)).toEqual(["dropped-by-disconnect"])
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(1) // the first attempt only
  })

  it("ends the window at the first message not sent again: later resends are judged as usual", () => {
    const { sim, c2, id } = setup(true)
    sim.frame("c2", { t: "msg", id: id + 1, type: MessageType.MonitorsConfig, size: 28, data: concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]), end: true })
    sim.frame("c2", { t: "msg", id: id + 2, type: MessageType.MonitorsConfig, size: 28, data: concat([u32le(1, 0), u32le(600, 800, 32, 0, 0)]), end: true, again: true })
    sim.wrote()
    const answers = (mid: number) => c2.frames.filter((f) => (f.t === "ack" || f.t === "notice") && f.id === mid).map((f) => (f.t === "ack" ? "ack" : f.t === "notice" ? f.code : ""))
    expect([answers(id + 1), answers(id + 2)]).toEqual([["ack"], ["ack"]])
  })

  it("in the same agent connection it is written named, and the bridge does not write it twice", () => {
    const { sim, id } = setup(false)
    sim.wrote()
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(1)
    expect(sim.bridge.suppressed + sim.agentGot(MessageType.ClipboardRelease).length).toBeGreaterThanOrEqual(1)
    expect(sim.clients.get("c2")!.frames.some((f) => f.t === "ack" && f.id === id)).toBe(true)
  })
})

describe("per-sender order across a restart", () => {
  it("keeps the ids a console owes in its attachment: a later message is still held back after hibernation", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.bridge.dedupe = false
    const before = sim.bridge.wnext
    const first = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.detachBridge()
    sim.bridge.wnext = before
    sim.bridge.written.pop()
    sim.attachBridge()
    expect(c.sent.get(first)!.fate).toEqual(["resend"])
    sim.restart()
    const later = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)]))
    expect(c.sent.get(later)!.fate).toEqual(["resend"])
  })
})
