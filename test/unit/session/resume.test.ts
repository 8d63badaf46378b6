// Client resume (DESIGN.md invariant 5, "clients can resume too"): seats kept for a grace after a network loss,
// single-use tokens, CLIENT_DISCONNECTED held for that grace. Traffic after a resume: resume-traffic.test.ts.
import { describe, expect, it } from "vitest"
import { MessageType, Port } from "../../../src/protocol/constants.ts"
import { ClientModel, bytes, concat, u32le } from "./sim.ts"
import { GRACE, disconnects, ready, timer, welcome } from "./resume-kit.ts"

describe("resume keeps the seat", () => {
  it("a controller lost to the network resumes as controller; the agent never hears CLIENT_DISCONNECTED", () => {
    const sim = ready()
    sim.join("c1")
    expect(welcome(sim, "c1").resume).toBe("tok-c1")
    sim.leave("c1", "error")
    expect(disconnects(sim)).toHaveLength(0)
    expect(sim.state.controller).toBeNull()
    const b = sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "controller", resumed: true, resume: "tok-c1b" })
    expect(b.role).toBe("controller")
    expect(sim.state.controller).toBe("c1b")
    timer(sim, sim.now + 2 * GRACE)
    expect(disconnects(sim)).toHaveLength(0)
    sim.send("c1b", MessageType.ClipboardRelease, u32le(0))
    expect(sim.agentGot(MessageType.ClipboardRelease)).toHaveLength(1)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("after someone else took control it resumes as a viewer; the takeover told the agent at once", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    sim.join("c2")
    expect(disconnects(sim)).toHaveLength(1)
    const b = sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "viewer", resumed: true })
    expect(b.role).toBe("viewer")
    expect(sim.state.controller).toBe("c2")
    timer(sim, sim.now + 2 * GRACE)
    expect(disconnects(sim)).toHaveLength(1)
  })

  it("a viewer seat resumes as a viewer even if its hello asks for control; a token that no longer allows control releases it", () => {
    const sim = ready()
    sim.join("v1", "viewer")
    sim.leave("v1", "error")
    sim.resume("v1b", "v1")
    expect(welcome(sim, "v1b")).toMatchObject({ role: "viewer", resumed: true })
    sim.join("c1")
    sim.leave("c1", "error")
    sim.resume("c1b", "c1", { role: "viewer", maxRole: "viewer" })
    expect(welcome(sim, "c1b")).toMatchObject({ role: "viewer", resumed: true })
    expect(disconnects(sim)).toHaveLength(1)
    expect(sim.state.controller).toBeNull()
  })

  it("a link the relay still thinks open (half-open TCP) is closed and its seat moves to the new link", () => {
    const sim = ready()
    const a = sim.join("c1")
    sim.resume("c1b", "c1")
    expect(a.closed?.code).toBe("replaced")
    expect(welcome(sim, "c1b")).toMatchObject({ role: "controller", resumed: true })
    expect(sim.state.controller).toBe("c1b")
    expect([...sim.state.clients.keys()]).toEqual(["c1b"])
    expect(disconnects(sim)).toHaveLength(0)
    expect(sim.tornAnywhere()).toEqual([])
  })
})

describe("tokens", () => {
  it("an expired token joins fresh, with the role its hello asks for", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    sim.now += GRACE + 1
    sim.resume("c1b", "c1")
    expect(welcome(sim, "c1b").resumed).toBeUndefined()
    expect(welcome(sim, "c1b").role).toBe("controller")
    expect(disconnects(sim)).toHaveLength(1) // the held seat expired first
    sim.resume("v1", "c1", { role: "viewer", token: "never-issued" })
    expect(welcome(sim, "v1")).toMatchObject({ role: "viewer" })
    expect(welcome(sim, "v1").resumed).toBeUndefined()
  })

  it("a token is single use: offered again, it joins fresh and takes nothing", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    sim.resume("c1b", "c1")
    sim.resume("x", "c1", { role: "viewer" })
    expect(welcome(sim, "x").resumed).toBeUndefined()
    expect(welcome(sim, "x").role).toBe("viewer")
    expect(sim.clients.get("c1b")!.closed).toBeNull()
    expect(sim.state.controller).toBe("c1b")
  })

  it("a clean close ends the seat: CLIENT_DISCONNECTED at once, the token no longer resumes", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "closed")
    expect(disconnects(sim)).toHaveLength(1)
    expect(disconnects(sim)[0]!.port).toBe(Port.Server)
    sim.resume("c1b", "c1", { role: "viewer" })
    expect(welcome(sim, "c1b").resumed).toBeUndefined()
  })

  it("a join without a token gets an empty one, which leaves no seat behind", () => {
    const sim = ready()
    sim.clients.set("n", new ClientModel("n"))
    sim.step({ _tag: "ClientJoined", client: "n", maxRole: "controller", hello: { t: "hello", v: 1, client: "n", role: "controller", caps: [] } })
    expect(welcome(sim, "n").resume).toBe("")
    sim.leave("n", "error")
    expect(sim.state.seats.size).toBe(0)
    expect(disconnects(sim)).toHaveLength(1)
    sim.join("m", "viewer", [], "viewer", { token: "" })
    expect(welcome(sim, "m").resumed).toBeUndefined()
  })
})

describe("CLIENT_DISCONNECTED", () => {
  it("is held for the grace after a network loss, then sent when the timer fires", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    const set = sim.commands.filter((c) => c._tag === "SetTimer")
    expect(set).toEqual([{ _tag: "SetTimer", at: sim.now + GRACE }])
    const until = sim.now + GRACE
    timer(sim, until - 1)
    expect(disconnects(sim)).toHaveLength(0)
    timer(sim, until)
    expect(disconnects(sim)).toHaveLength(1)
    expect(disconnects(sim)[0]!.port).toBe(Port.Server)
    sim.resume("c1b", "c1", { role: "viewer" })
    expect(welcome(sim, "c1b").resumed).toBeUndefined()
  })

  it("the departed controller's half-sent message is aborted at once and never reaches the agent", () => {
    const sim = ready()
    sim.join("c1")
    const payload = concat([u32le(0, 1), bytes(200_000)])
    sim.send("c1", MessageType.Clipboard, payload, { frag: 50_000, stopAfter: 2 })
    sim.leave("c1", "error")
    expect(sim.commands.some((c) => c._tag === "SendToBridge" && c.frame.t === "abort")).toBe(true)
    expect(disconnects(sim)).toHaveLength(0)
    sim.wrote()
    sim.resume("c1b", "c1")
    sim.send("c1b", MessageType.Clipboard, payload, { frag: 50_000 })
    const got = sim.agentGot(MessageType.Clipboard)
    expect(got).toHaveLength(1)
    expect(got[0]!.payload.length).toBe(payload.length)
    expect(sim.tornAnywhere()).toEqual([])
  })

  it("the bridge grace and a held seat share one timer: each deadline is asked for in turn", () => {
    const sim = ready()
    sim.join("c1")
    sim.leave("c1", "error")
    const seatUntil = sim.now + GRACE
    sim.now += 3000
    sim.detachBridge()
    timer(sim, seatUntil)
    expect(sim.commands.filter((c) => c._tag === "SetTimer")).toEqual([{ _tag: "SetTimer", at: seatUntil + 3001 }])
    sim.attachBridge()
  })
})
