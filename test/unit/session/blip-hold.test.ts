// Nothing lost across a tunnel blip, client → agent: while the bridge tunnel is down within its grace, client messages
// are held (the sender's credit withheld) and written when it comes back, or dropped with notices when it does not.
// The console side is the real SDK outbox (src/client/outbox.ts), so resends and credit behave as in a browser.
import { describe, expect, it } from "vitest"
import { MessageType } from "../../../src/protocol/constants.ts"
import type { ClientToRelay } from "../../../src/link/types.ts"
import { Outbox } from "../../../src/client/outbox.ts"
import { Sim, bytes, concat, same, u32le } from "./sim.ts"
import { GRACE, ready, timer, welcome } from "./resume-kit.ts"

/** A console driven by the SDK's outbox: frames it sends go through the actor; acks, notices and credit come back. */
class SdkConsole {
  readonly toRelay: ClientToRelay[] = []
  readonly outbox = new Outbox({ maxFragment: 16 * 1024, send: (f) => void this.toRelay.push(f) })
  readonly outcome = new Map<number, string>()
  private seen = 0
  private ids = 0

  constructor(readonly sim: Sim, readonly id: string) {
    sim.join(id)
    this.deliver()
    this.outbox.linkOpened(welcome(sim, id).credit)
    this.drive()
  }

  send(type: number, payload: Uint8Array): number {
    const id = ++this.ids
    this.outbox.enqueue(type, payload).then(
      () => void this.outcome.set(id, "ack"),
      (e: { notice?: string }) => void this.outcome.set(id, e.notice ?? "error"),
    )
    return id
  }

  /** Hands up to `max` queued frames to the actor, feeding the answers back to the outbox after each. */
  drive(max = Infinity): void {
    this.deliver()
    for (let n = 0; n < max && this.toRelay.length > 0; n++) {
      this.sim.frame(this.id, this.toRelay.shift()!)
      this.deliver()
    }
  }

  private deliver(): void {
    const m = this.sim.clients.get(this.id)!
    while (this.seen < m.frames.length) {
      const f = m.frames[this.seen++]!
      if (f.t === "ack") this.outbox.ack(f.id)
      else if (f.t === "notice" && f.id !== undefined) this.outbox.notice(f.id, f.code, f.detail)
      else if (f.t === "credit") this.outbox.addCredit(f.bytes)
    }
  }

  notices(): string[] {
    return this.sim.clients.get(this.id)!.frames.flatMap((f) => (f.t === "notice" ? [f.code] : []))
  }
}

/** What the agent got on the client port, besides the relay's own ANNOUNCE_CAPABILITIES. */
const clientPort = (sim: Sim) => sim.agentGot().filter((m) => m.port === 1 && m.type !== MessageType.AnnounceCapabilities)
const settle = () => new Promise((r) => setTimeout(r, 0))
const clip = (n: number, seed = 1): Uint8Array => concat([u32le(0, 1), bytes(n, seed)])

describe("nothing lost across a tunnel blip, client → agent", () => {
  it("the SDK's resend of a half-streamed CLIPBOARD is held while the bridge reconnects (its sender waits on credit) and written whole once it is back", async () => {
    const sim = ready({ limits: { clientCredit: 128 * 1024 } })
    const sdk = new SdkConsole(sim, "c1")
    const payload = clip(400_000)
    sdk.send(MessageType.Clipboard, payload)
    sdk.drive(3) // 48 KiB streamed to the bridge
    expect(sim.bridge.portBuf.size).toBe(1)
    sim.detachBridge()
    // The sender is told "resend"; the SDK aborts and starts again from byte 0 while the tunnel is still down.
    expect(sdk.notices()).toEqual(["resend"])
    sdk.drive()
    expect(sdk.notices()).toEqual(["resend"]) // accepted, not refused agent-not-connected
    expect(sdk.toRelay).toEqual([]) // its credit is spent and withheld: it waits
    expect(sim.state.guest.heldBytes).toBeGreaterThan(100 * 1024)
    expect(sim.state.guest.heldBytes).toBeLessThanOrEqual(128 * 1024 + 66 * 1024)
    expect(sim.clients.get("c1")!.agent?.connected).toBe(true)

    sim.attachBridge()
    sdk.drive() // the credit came back with the flush: the rest streams live
    sim.wrote()
    sdk.drive()
    await settle()
    const got = sim.agentGot(MessageType.Clipboard)
    expect(got).toHaveLength(1)
    expect(same(got[0]!.payload, payload)).toBe(true)
    expect(sdk.outcome.get(1)).toBe("ack")
    expect(sim.clients.get("c1")!.frames.filter((f) => f.t === "ack")).toHaveLength(1)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("messages sent during the blip are written in order when the bridge is back, each acknowledged once; the latest pointer follows", async () => {
    const sim = ready()
    const sdk = new SdkConsole(sim, "c1")
    sim.detachBridge()
    const grab = concat([u32le(0, 0), u32le(1)])
    const mc = concat([u32le(1, 0), u32le(768, 1024, 32, 0, 0)])
    sdk.send(MessageType.ClipboardGrab, grab)
    sdk.send(MessageType.MonitorsConfig, mc)
    sdk.send(MessageType.Clipboard, clip(100_000, 2))
    sdk.drive()
    sim.frame("c1", { t: "mouse", x: 1, y: 1, buttons: 0, display: 0 })
    sim.frame("c1", { t: "mouse", x: 7, y: 9, buttons: 1, display: 0 })
    expect(clientPort(sim)).toHaveLength(0)
    expect(sdk.notices()).toEqual([])
    sim.attachBridge()
    sdk.drive()
    sim.wrote()
    sdk.drive()
    await settle()
    expect(clientPort(sim).map((m) => m.type)).toEqual([MessageType.ClipboardGrab, MessageType.MonitorsConfig, MessageType.Clipboard])
    const mice = sim.agentGot(MessageType.MouseState)
    expect(mice.map((m) => [...m.payload.subarray(0, 4)])).toEqual([[7, 0, 0, 0]])
    expect([...sdk.outcome.values()]).toEqual(["ack", "ack", "ack"])
    expect(sim.clients.get("c1")!.frames.filter((f) => f.t === "ack")).toHaveLength(3)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a grace that expires drops what was held: one dropped-by-disconnect notice each, credit given back, nothing written later", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.detachBridge()
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    const b = sim.send("c1", MessageType.Clipboard, clip(200_000, 3), { frag: 50_000, stopAfter: 2 })
    expect(c.creditBack).toBe(0)
    timer(sim, sim.now + GRACE + 1)
    expect(c.sent.get(a)!.fate).toEqual(["dropped-by-disconnect"])
    expect(c.sent.get(b)!.fate).toEqual(["dropped-by-disconnect"])
    expect(c.creditBack).toBe(4 + 100_000)
    expect(c.agent?.connected).toBe(false)
    sim.attachBridge()
    expect(clientPort(sim)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a message lost in the dying tunnel: the sender's later held messages are told resend too, so none is written ahead of it", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.bridge.connected = false // frames sent now are lost in the dying tunnel
    const lost = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.bridge.connected = true
    sim.step({ _tag: "BridgeDetached", cause: "error" })
    sim.violations.length = 0
    const later = sim.send("c1", MessageType.ClipboardGrab, concat([u32le(0, 0), u32le(1)]))
    sim.attachBridge()
    expect(c.sent.get(lost)!.fate).toEqual(["resend"])
    expect(c.sent.get(later)!.fate).toEqual(["resend"])
    expect(clientPort(sim)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("only what does not fit the held budget is refused, with a notice; the rest is written", () => {
    const sim = ready({ limits: { clientCredit: 8 * 1024, storeAndForwardBytes: 1500 } })
    const c = sim.join("c1")
    sim.detachBridge()
    // 1428 chunked bytes each; the budget is the credit (8192) plus one stored message (1500): six fit.
    const ids = Array.from({ length: 7 }, (_, i) => sim.send("c1", MessageType.Clipboard, clip(1392, i)))
    expect(ids.map((id) => c.sent.get(id)!.fate)).toEqual([[], [], [], [], [], [], ["agent-not-connected"]])
    sim.attachBridge()
    sim.wrote()
    expect(ids.map((id) => c.sent.get(id)!.fate)).toEqual([["ack"], ["ack"], ["ack"], ["ack"], ["ack"], ["ack"], ["agent-not-connected"]])
    expect(sim.agentGot(MessageType.Clipboard)).toHaveLength(6)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a restart while messages are held: told resend once the bridge is back in the same epoch (the held bytes were only in memory)", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.detachBridge()
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    const b = sim.send("c1", MessageType.Clipboard, clip(200_000, 4), { frag: 50_000, stopAfter: 2 })
    sim.restart()
    expect(c.sent.get(b)!.fate).toEqual(["resend"])
    // Whether a whole message reached the bridge is unknown until it says hello: its epoch decides.
    expect(c.sent.get(a)!.fate).toEqual([])
    sim.attachBridge()
    expect(c.sent.get(a)!.fate).toEqual(["resend"])
    expect(clientPort(sim)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a restart, then the bridge back with a new agent connection: the unsure message is dropped-by-disconnect, never resent to it", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.detachBridge()
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.restart()
    sim.attachBridge({ epoch: 2 })
    expect(c.sent.get(a)!.fate).toEqual(["dropped-by-disconnect"])
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(0)
  })

  it("a restart and no bridge: the unsure message is answered dropped-by-disconnect when the grace ends (never unanswered)", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.detachBridge()
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.restart()
    const timer = sim.commands.find((x) => x._tag === "SetTimer")
    expect(timer).toBeDefined()
    sim.now += 60_000
    sim.step({ _tag: "TimerFired" })
    expect(c.sent.get(a)!.fate).toEqual(["dropped-by-disconnect"])
  })

  it("a new agent connection when the tunnel comes back: what was held for the old one is dropped-by-disconnect", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.detachBridge()
    const a = sim.send("c1", MessageType.ClipboardRelease, u32le(0))
    sim.attachBridge({ epoch: 2 })
    expect(c.sent.get(a)!.fate).toEqual(["dropped-by-disconnect"])
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(0)
  })
})
