// Client-side rules: roles, takeover, policy filter, validation, store-and-forward and streaming, mouse mux.
import { MOUSE_IN_FLIGHT } from "../../../src/session/guest-out.ts"
import { describe, expect, it } from "vitest"
import { Cap, FileXferResult, MessageType, Port } from "../../../src/protocol/constants.ts"
import { buildCaps } from "../../../src/protocol/caps.ts"
import { decodeFileXferStatus } from "../../../src/protocol/codec-file-xfer.ts"
import { Sim, announce, bytes, concat, same, u32le } from "./sim.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"

const AGENT_CAPS = [SPICE_VDAGENT_CAPS]

const ready = (o: ConstructorParameters<typeof Sim>[0] = {}): Sim => {
  const sim = new Sim(o)
  sim.attachBridge()
  sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
  sim.pump()
  return sim
}

const monitors = (n: number): Uint8Array => concat([u32le(n, 0), ...Array.from({ length: n }, () => u32le(768, 1024, 32, 0, 0))])
const notices = (sim: Sim, id: string) => sim.clients.get(id)!.frames.filter((f) => f.t === "notice")

describe("roles", () => {
  it("viewers can never send to the agent (dropped-by-role, told)", () => {
    const sim = ready()
    const v = sim.join("v1", "viewer")
    const id = sim.send("v1", MessageType.MonitorsConfig, monitors(1))
    expect(sim.agentGot(MessageType.MonitorsConfig)).toHaveLength(0)
    expect(v.sent.get(id)!.fate).toEqual(["dropped-by-role"])
    sim.frame("v1", { t: "mouse", x: 1, y: 2, buttons: 0, display: 0 })
    expect(sim.agentGot(MessageType.MouseState)).toHaveLength(0)
    expect(notices(sim, "v1").at(-1)).toMatchObject({ code: "dropped-by-role", type: MessageType.MouseState })
  })

  it("a new controller takes over: the old one becomes a viewer, its half message is dropped with notice, CLIENT_DISCONNECTED sent", () => {
    const sim = ready()
    const c1 = sim.join("c1")
    const big = bytes(200_000)
    const id = sim.send("c1", MessageType.Clipboard, concat([u32le(0, 1), big]), { frag: 50_000, stopAfter: 2 })
    const c2 = sim.join("c2")
    expect(c2.role).toBe("controller")
    expect(c1.role).toBe("viewer")
    expect(c1.sent.get(id)!.fate).toEqual(["role-changed"])
    expect(sim.agentGot(MessageType.Clipboard)).toHaveLength(0)
    expect(sim.agentGot(MessageType.ClientDisconnected)).toHaveLength(1)
    expect(sim.agentGot(MessageType.ClientDisconnected)[0]!.port).toBe(Port.Server)
    // the rest of c1's message is consumed without a second notice, without closing it
    sim.sendRest("c1", id, concat([u32le(0, 1), big]), 100_000, 50_000)
    expect(c1.closed).toBeNull()
    expect(c1.sent.get(id)!.fate).toEqual(["role-changed"])
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a viewer token cannot take control", () => {
    const sim = ready()
    const v = sim.join("v1", "viewer", [], "viewer")
    sim.frame("v1", { t: "control" })
    expect(v.role).toBe("viewer")
    expect(notices(sim, "v1").at(-1)).toMatchObject({ code: "dropped-by-role" })
  })
})

describe("policy filter", () => {
  it("copy-paste off: a clipboard message is dropped and its sender told", () => {
    const sim = ready({ policy: { copyPaste: false } })
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.ClipboardGrab, u32le(0, 0, 1))
    expect(c.sent.get(id)!.fate).toEqual(["dropped-by-policy"])
    expect(sim.agentGot(MessageType.ClipboardGrab)).toHaveLength(0)
  })

  it("file transfer off: START answered with FILE_XFER_STATUS DISABLED (detailed errors) or ERROR", () => {
    for (const [caps, result] of [[buildCaps([Cap.FileXferDetailedErrors]), FileXferResult.Disabled], [[0], FileXferResult.Error]] as const) {
      const sim = ready({ policy: { fileTransfer: false } })
      const c = sim.join("c1", "controller", [...caps])
      const start = concat([u32le(7), new TextEncoder().encode("[vdagent-file-xfer]\nname=a\nsize=1\n\0")])
      const id = sim.send("c1", MessageType.FileXferStart, start)
      expect(c.sent.get(id)!.fate).toEqual(["dropped-by-policy"])
      const st = c.messages.find((m) => m.type === MessageType.FileXferStatus)!
      const d = decodeFileXferStatus(st.payload)
      expect(d._tag === "Ok" && d.value).toMatchObject({ id: 7, result })
      expect(sim.agentGot(MessageType.FileXferStart)).toHaveLength(0)
    }
  })

  it("a clipboard over maxClipboardBytes is refused before its body is buffered", () => {
    const sim = ready({ policy: { maxClipboardBytes: 1000 } })
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.Clipboard, concat([u32le(0, 1), bytes(5000)]), { frag: 100 })
    expect(c.sent.get(id)!.fate).toEqual(["too-large"])
    expect(sim.state.clients.get("c1")!.inMsg).toBeNull()
  })

  it("a live policy change aborts a clipboard stream in progress (the bridge drops it, the sender is told)", () => {
    const sim = ready()
    const c = sim.join("c1")
    const payload = concat([u32le(0, 1), bytes(300_000)])
    const id = sim.send("c1", MessageType.Clipboard, payload, { frag: 60_000, stopAfter: 2 })
    sim.step({ _tag: "PolicyChanged", policy: { ...sim.state.policy, copyPaste: false } })
    expect(c.sent.get(id)!.fate).toEqual(["dropped-by-policy"])
    expect(sim.bridge.frames.some((f) => (f as { t: string }).t === "abort")).toBe(true)
    sim.sendRest("c1", id, payload, 120_000, 60_000)
    expect(sim.agentGot(MessageType.Clipboard)).toHaveLength(0)
    expect(c.agent!.caps).not.toBeNull()
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("validation", () => {
  it("MONITORS_CONFIG with more than 16 monitors is refused (invalid-message)", () => {
    const sim = ready()
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.MonitorsConfig, monitors(17))
    expect(c.sent.get(id)!.fate[0]).toMatch(/too-large|invalid-message/)
    expect(sim.agentGot(MessageType.MonitorsConfig)).toHaveLength(0)
  })

  it("an unbounded MONITORS_CONFIG size (CVE-2017-7506 class) is refused from the header alone", () => {
    const sim = ready()
    const c = sim.join("c1")
    sim.frame("c1", { t: "msg", id: 1, type: MessageType.MonitorsConfig, size: 0x7fff_ffff, data: u32le(0x7fff_fff0, 0), end: false })
    c.sent.set(1, { type: MessageType.MonitorsConfig, fate: [] })
    expect(notices(sim, "c1").at(-1)).toMatchObject({ id: 1, code: "too-large" })
    expect(sim.state.clients.get("c1")!.inMsg!.buf.length).toBe(0)
  })

  it("a MONITORS_CONFIG whose count does not fit its size is refused after store", () => {
    const sim = ready()
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.MonitorsConfig, concat([u32le(3, 0), u32le(768, 1024, 32, 0, 0)]))
    expect(c.sent.get(id)!.fate).toEqual(["invalid-message"])
  })

  it("relay-only messages (CLIENT_DISCONNECTED, GRAPHICS_DEVICE_INFO) from a client are refused", () => {
    const sim = ready()
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.ClientDisconnected, new Uint8Array(0))
    expect(c.sent.get(id)!.fate).toEqual(["invalid-message"])
  })

  it("with no agent, a message is answered agent-not-connected", () => {
    const sim = new Sim()
    const c = sim.join("c1")
    const id = sim.send("c1", MessageType.MonitorsConfig, monitors(1))
    expect(c.sent.get(id)!.fate).toEqual(["agent-not-connected"])
  })

  it("frames out of order close that client only (protocol)", () => {
    const sim = ready()
    const a = sim.join("c1")
    const b = sim.join("v1", "viewer")
    sim.frame("c1", { t: "more", id: 9, data: new Uint8Array(3), end: true })
    expect(a.closed?.code).toBe("protocol")
    expect(b.closed).toBeNull()
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("server-port mux", () => {
  it("MOUSE_STATE only when the agent announced the cap; MOUSE_IN_FLIGHT in flight, then coalesced, latest wins", () => {
    const sim = new Sim()
    sim.attachBridge()
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, [0x2])) // no MOUSE_STATE
    sim.pump()
    sim.join("c1")
    sim.frame("c1", { t: "mouse", x: 1, y: 1, buttons: 0, display: 0 })
    expect(sim.agentGot(MessageType.MouseState)).toHaveLength(0)
    expect(notices(sim, "c1").at(-1)).toMatchObject({ code: "dropped-by-policy" })
    sim.agentSays(MessageType.AnnounceCapabilities, announce(false, AGENT_CAPS))
    sim.pump()
    const n = MOUSE_IN_FLIGHT + 10
    for (let i = 0; i < n; i++) sim.frame("c1", { t: "mouse", x: i, y: i, buttons: 0, display: 0 })
    expect(sim.agentGot(MessageType.MouseState)).toHaveLength(MOUSE_IN_FLIGHT)
    sim.wrote()
    const m = sim.agentGot(MessageType.MouseState)
    expect(m).toHaveLength(MOUSE_IN_FLIGHT + 1)
    expect(m.map((x) => x.payload.subarray(0, 4))).toEqual([...Array.from({ length: MOUSE_IN_FLIGHT }, (_, i) => u32le(i)), u32le(n - 1)])
    expect(m.every((x) => x.port === Port.Server)).toBe(true)
  })

  it("a 10 MiB clipboard stream does not stall mouse updates: they interleave at chunk boundaries", () => {
    const sim = ready()
    sim.join("c1")
    sim.credit("c1", 1 << 30)
    const payload = concat([u32le(0, 1), bytes(10 * 1024 * 1024)])
    const mid = sim.send("c1", MessageType.Clipboard, payload, { frag: 256 * 1024, stopAfter: 4 })
    for (let i = 0; i < 3; i++) {
      sim.frame("c1", { t: "mouse", x: i, y: i, buttons: 0, display: 0 })
      sim.wrote()
    }
    expect(sim.agentGot(MessageType.MouseState)).toHaveLength(3)
    expect(sim.agentGot(MessageType.Clipboard)).toHaveLength(0)
    // A bridge that keeps up (it reports written every byte it holds except the unfinished message's)
    for (let at = 4 * 256 * 1024; at < payload.length; at += 256 * 1024) {
      const data = payload.subarray(at, Math.min(payload.length, at + 256 * 1024))
      sim.frame("c1", { t: "more", id: mid, data, end: at + data.length === payload.length })
      sim.frame("c1", { t: "mouse", x: at, y: 0, buttons: 0, display: 0 })
      sim.wrote()
    }
    const written = sim.bridge.written
    expect(same(written.filter((m) => m.type === MessageType.Clipboard)[0]!.payload, payload)).toBe(true)
    // mouse writes kept flowing while the clipboard was streamed (the bridge wrote them before the clipboard ended)
    expect(written.findIndex((m) => m.type === MessageType.Clipboard)).toBeGreaterThan(30)
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("flow control", () => {
  it("credit is given back as bytes are forwarded, and withheld while the guest is behind", () => {
    const sim = ready({ limits: { guestWindow: 100_000 } })
    const c = sim.join("c1")
    for (let i = 0; i < 3; i++) sim.send("c1", MessageType.ClipboardGrab, u32le(0, 0, 1))
    expect(c.creditBack).toBeGreaterThan(0)
    const before = c.creditBack
    const big = concat([u32le(0, 1), bytes(150_000)])
    sim.send("c1", MessageType.Clipboard, big, { frag: 60_000 })
    expect(c.creditBack - before).toBeLessThan(big.length)
    sim.wrote()
    expect(c.creditBack - before).toBe(big.length)
  })

  it("a slow viewer is closed with slow-consumer; the controller keeps receiving", () => {
    const sim = ready({ limits: { clientQueueBytes: 100_000, initialClientCredit: 1000 }, split: 50_000 })
    const c = sim.join("c1")
    const v = sim.join("v1", "viewer")
    sim.credit("c1", 1 << 30)
    for (let i = 0; i < 4; i++) sim.agentSays(MessageType.Reply, u32le(2, 1))
    for (let i = 0; i < 3; i++) sim.agentSays(MessageType.MonitorsConfig, bytes(60_000)) // goes to everyone
    sim.pump()
    expect(v.closed?.code).toBe("slow-consumer")
    expect(c.closed).toBeNull()
    expect(c.messages.filter((m) => m.type === MessageType.MonitorsConfig)).toHaveLength(3)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("a slow controller back-pressures the agent: acknowledgements stop until it reads", () => {
    const sim = ready({ limits: { initialClientCredit: 1000, agentWindow: 256 * 1024 }, split: 32 * 1024 })
    const c = sim.join("c1")
    sim.agentSays(MessageType.Clipboard, concat([u32le(0, 1), bytes(1024 * 1024)]))
    sim.pump()
    expect(sim.bridge.sentTo).toBeLessThan(sim.bridge.agentLen)
    expect(sim.bridge.sentTo - sim.bridge.acked).toBeLessThanOrEqual(256 * 1024)
    for (let i = 0; i < 100 && c.messages.length < 2; i++) {
      sim.credit("c1", 64 * 1024)
      sim.pump()
    }
    expect(c.messages.find((m) => m.type === MessageType.Clipboard)?.payload.length).toBe(8 + 1024 * 1024)
    expect(sim.tornAnywhere()).toEqual([])
  })
})
