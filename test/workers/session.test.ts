// A whole session through the Worker and the VmSession in workerd: a fake bridge and consoles exchange real vdagent
// messages; hibernation mid-message (client) and mid-chunk (bridge) loses and tears nothing; tenants and VMs do not
// see each other.
import { SELF, evictDurableObject } from "cloudflare:test"
import { describe, expect, it } from "vitest"
import { LINK_VERSION, type Role } from "../../src/link/types.ts"
import { encodeChunkedMessage } from "../../src/protocol/chunker.ts"
import { MessageType, Port } from "../../src/protocol/constants.ts"
import { FakeBridge } from "../harness/fake-bridge.ts"
import { ORIGIN, bridgePeer, clientPeer, mint, receiveMessage, stubFor, upgrade, type ClientPeer } from "./helpers.ts"
import { SPICE_VDAGENT_CAPS } from "../../src/protocol/known.ts"

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)))
/** Caps of spice-vdagent 0.22.1 (test/golden/captured-agent-announce-request.hex). */
const AGENT_CAPS = SPICE_VDAGENT_CAPS
const announce = encodeChunkedMessage(Port.Client, MessageType.AnnounceCapabilities, hex("01000000e78d0300"))
/** CLIPBOARD_GRAB(selection 0, serial 0, UTF8_TEXT) as the real agent sends it. */
const grab = encodeChunkedMessage(Port.Client, MessageType.ClipboardGrab, hex("00000000" + "00000000" + "01000000"))

const openBridge = async (tenant: string, vm: string) => {
  const peer = bridgePeer(await upgrade(`/v1/vms/${vm}/agent`, { token: await mint({ tenant, vm, role: "bridge" }), via: "bearer" }))
  const bridge = new FakeBridge((f) => peer.send(f))
  peer.ws.addEventListener("message", () => {
    for (const f of peer.inbox.splice(0)) bridge.onFrame(f)
  })
  bridge.attach((f) => peer.send(f))
  return { peer, bridge }
}

const openClient = async (tenant: string, vm: string, role: Role): Promise<ClientPeer> => {
  const peer = clientPeer(await upgrade(`/v1/vms/${vm}/console`, { token: await mint({ tenant, vm, role }) }))
  peer.send({ t: "hello", v: LINK_VERSION, client: `test-${role}`, role, caps: [AGENT_CAPS] })
  await peer.next((f) => f.t === "welcome")
  peer.send({ t: "credit", bytes: 1 << 20 })
  return peer
}

const grabs = (b: FakeBridge) => b.guest.filter((g) => g.type === MessageType.ClipboardGrab).length
const status = async (tenant: string, vm: string) =>
  (await SELF.fetch(`${ORIGIN}/v1/vms/${vm}/status`, { headers: { Authorization: `Bearer ${await mint({ tenant, vm, role: "operator" })}` } })).json() as Promise<{
    agent: { bridge: boolean; caps: number[] | null }
    clients: Record<string, number>
  }>

describe("a session", () => {
  it("relays agent messages to the controller and client messages whole to the guest", async () => {
    const { bridge } = await openBridge("acme", "vm-s1")
    bridge.agentWrites(announce)
    const controller = await openClient("acme", "vm-s1", "controller")
    bridge.agentWrites(grab)
    const m = await receiveMessage(controller)
    expect(m.type).toBe(MessageType.ClipboardGrab)
    expect(m.data).toEqual(grab.subarray(28))
    controller.send({ t: "msg", id: 1, type: MessageType.ClipboardGrab, size: 12, data: hex("000000000000000001000000"), end: true })
    expect(await controller.next((f) => f.t === "ack")).toEqual({ t: "ack", id: 1 })
    expect(grabs(bridge)).toBe(1)
    const s = await status("acme", "vm-s1")
    expect(s).toMatchObject({ agent: { bridge: true, caps: [AGENT_CAPS] }, clients: { controller: 1 } })
  })

  it("does not let a viewer send to the agent", async () => {
    const { bridge } = await openBridge("acme", "vm-s2")
    bridge.agentWrites(announce)
    const viewer = await openClient("acme", "vm-s2", "viewer")
    viewer.send({ t: "msg", id: 9, type: MessageType.ClipboardGrab, size: 12, data: hex("000000000000000001000000"), end: true })
    expect(await viewer.next((f) => f.t === "notice")).toMatchObject({ code: "dropped-by-role", id: 9 })
    await bridge.sync()
    expect(grabs(bridge)).toBe(0)
  })
})

describe("hibernation", () => {
  it("mid message from a client: the message reaches the guest whole exactly once, or its sender is told to resend", async () => {
    const { bridge, peer } = await openBridge("acme", "vm-h1")
    bridge.agentWrites(announce)
    const controller = await openClient("acme", "vm-h1", "controller")
    const text = new TextEncoder().encode("x".repeat(3000))
    const payload = new Uint8Array(8 + text.length)
    payload.set(hex("0000000001000000"))
    payload.set(text, 8)
    controller.send({ t: "msg", id: 5, type: MessageType.Clipboard, size: payload.length, data: payload.subarray(0, 1000), end: false })
    controller.send({ t: "ping", n: 1 })
    await controller.next((f) => f.t === "pong") // the first fragment has been handled before the eviction
    await evictDurableObject(stubFor("acme", "vm-h1"), { webSockets: "hibernate" })
    controller.send({ t: "more", id: 5, data: payload.subarray(1000), end: true })
    const outcome = await controller.next((f) => f.t === "ack" || (f.t === "notice" && f.id === 5))
    if (outcome.t === "notice") {
      expect(outcome.code).toBe("resend")
      // Sent again under its id, as the SDK does (a later id before it would be told resend too: per-sender order).
      controller.send({ t: "msg", id: 5, type: MessageType.Clipboard, size: payload.length, data: payload, end: true })
      expect(await controller.next((f) => f.t === "ack")).toEqual({ t: "ack", id: 5 })
    }
    await bridge.sync()
    const clips = bridge.guest.filter((g) => g.type === MessageType.Clipboard)
    expect(clips).toHaveLength(1)
    expect(clips[0]!.payload).toEqual(payload)
    expect(peer.ws.readyState).toBe(WebSocket.OPEN)
  })

  it("mid chunk from the bridge: the controller receives the agent's message whole, once", async () => {
    const { bridge } = await openBridge("acme", "vm-h2")
    bridge.agentWrites(announce)
    const controller = await openClient("acme", "vm-h2", "controller")
    bridge.agentWrites(grab.subarray(0, 13))
    await bridge.sync() // the half chunk has been handled before the eviction
    await evictDurableObject(stubFor("acme", "vm-h2"), { webSockets: "hibernate" })
    bridge.agentWrites(grab.subarray(13))
    const m = await receiveMessage(controller)
    expect(m.type).toBe(MessageType.ClipboardGrab)
    expect(m.data).toEqual(grab.subarray(28))
    bridge.agentWrites(encodeChunkedMessage(Port.Client, MessageType.ClipboardRelease, hex("00000000")))
    const next = await receiveMessage(controller)
    expect(next.type).toBe(MessageType.ClipboardRelease) // nothing duplicated in between
    expect(next.seq).toBeGreaterThan(m.seq)
  })
})

describe("isolation", () => {
  it("two tenants and two VMs at once: no cross-talk", async () => {
    const sides = [
      ["acme", "vm-i"],
      ["globex", "vm-i"],
      ["acme", "vm-j"],
    ] as const
    const opened = await Promise.all(sides.map(async ([t, v]) => ({ ...(await openBridge(t, v)), t, v })))
    for (const o of opened) o.bridge.agentWrites(announce)
    const consoles = await Promise.all(sides.map(([t, v]) => openClient(t, v, "controller")))
    opened[1]!.bridge.agentWrites(grab)
    expect((await receiveMessage(consoles[1]!)).type).toBe(MessageType.ClipboardGrab)
    consoles[0]!.send({ t: "msg", id: 1, type: MessageType.ClipboardGrab, size: 12, data: hex("000000000000000001000000"), end: true })
    await consoles[0]!.next((f) => f.t === "ack")
    for (const c of [consoles[0]!, consoles[2]!]) {
      c.send({ t: "ping", n: 7 })
      await c.next((f) => f.t === "pong")
      expect(c.inbox.filter((f) => f.t === "msg")).toHaveLength(0)
    }
    await Promise.all(opened.map((o) => o.bridge.sync()))
    expect(opened.map((o) => grabs(o.bridge))).toEqual([1, 0, 0])
    expect(await status("globex", "vm-i")).toMatchObject({ clients: { controller: 1 } })
  })
})
