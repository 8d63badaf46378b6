// The SDK against a fake relay over a real WebSocket: handshake, caps announce rules, roles, clipboard with serials.
import { afterEach, describe, expect, it, vi } from "vitest"
import { ClientError, ClipboardType, MessageType } from "../../../src/client/index.ts"
import { FakeRelay } from "./fake-relay.ts"
import { type Opened, concat, open, u32, until } from "./helpers.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"
import { readU32LE } from "../../../src/protocol/bytes.ts"

const AGENT_CAPS = SPICE_VDAGENT_CAPS
const utf8 = new TextEncoder()
let o: Opened | undefined
afterEach(async () => {
  await o?.done()
  o = undefined
})

describe("handshake", () => {
  it("offers the token as a subprotocol, never in the URL, and says hello with its caps", async () => {
    o = await open()
    expect(o.link.protocols).toEqual(["vdrelay.v1", "vdrelay.token.tok.en.sig"])
    expect(o.link.url).not.toContain("tok")
    expect(o.link.hello).toMatchObject({ t: "hello", v: 1, role: "controller", caps: [expect.any(Number)] })
    expect(o.link.hello).not.toHaveProperty("resume")
    expect(o.session.state).toBe("open")
    expect(o.session.agent).toEqual({ connected: true, caps: [AGENT_CAPS] })
  })

  it("grants the relay its receive window right after the welcome", async () => {
    o = await open({}, { receiveWindowBytes: 1 << 20 })
    const credit = await o.link.next((f) => f.t === "credit")
    expect(credit).toEqual({ t: "credit", bytes: 1 << 20 })
  })

  it("rejects connect with connect-failed when the upgrade is refused", async () => {
    const relay = await FakeRelay.start()
    relay.refuse = 401
    const { connect } = await import("../../../src/client/index.ts")
    const err = await connect({ url: relay.url, token: "t", heartbeatMs: 0 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ClientError)
    expect((err as ClientError).reason).toBe("connect-failed")
    await relay.close()
  })
})

describe("caps announce", () => {
  it("a controller announces its caps with request=1 when the agent is connected, then MAX_CLIPBOARD", async () => {
    o = await open()
    const announce = await o.link.nextMessage(MessageType.AnnounceCapabilities, 0)
    expect(readU32LE(announce.payload, 0)).toBe(1)
    const max = await o.link.nextMessage(MessageType.MaxClipboard, 0)
    expect(new DataView(max.payload.buffer).getInt32(0, true)).toBe(100 * 1024 * 1024)
  })

  it("a viewer never writes to the agent", async () => {
    o = await open({}, { role: "viewer" })
    await expect(o.session.setClipboardText("x")).rejects.toMatchObject({ reason: "not-controller" })
    expect(() => o!.session.sendMouse({ x: 1, y: 2 })).toThrow(ClientError)
    // Frames arrive in order: once the control request is in, anything sent before it would be too.
    o.session.takeControl().catch(() => {})
    await o.link.next((f) => f.t === "control")
    expect(o.link.frames.filter((f) => f.t === "msg")).toEqual([])
  })

  it("answers the agent's request=1 with request=0 and restarts its grab serials", async () => {
    o = await open()
    await o.link.nextMessage(MessageType.AnnounceCapabilities, 0)
    await o.session.setClipboardText("one") // serial 0
    await o.link.agentMessage(MessageType.AnnounceCapabilities, u32(1, AGENT_CAPS))
    const reply = await o.link.nextMessage(MessageType.AnnounceCapabilities, 1)
    expect(readU32LE(reply.payload, 0)).toBe(0)
    const from = o.link.messages.length
    await o.session.setClipboardText("two")
    const grab = await o.link.nextMessage(MessageType.ClipboardGrab, from)
    expect(grab.payload).toEqual(concat(u32(0), u32(0), u32(ClipboardType.Utf8Text)))
  })

  it("announces again when the agent comes back, and fails what depended on the old one", async () => {
    o = await open()
    const reply = o.session.setResolution(800, 600)
    await o.link.nextMessage(MessageType.MonitorsConfig, 0)
    o.link.send({ t: "agent", connected: false, caps: null })
    await expect(reply).rejects.toMatchObject({ reason: "agent-not-connected" })
    const from = o.link.messages.length
    o.link.send({ t: "agent", connected: true, caps: [AGENT_CAPS] })
    const again = await o.link.nextMessage(MessageType.AnnounceCapabilities, from)
    expect(readU32LE(again.payload, 0)).toBe(1)
  })
})

describe("clipboard", () => {
  it("grabs with selection prefix and serial, then answers the agent's request with the text", async () => {
    o = await open()
    await o.session.setClipboardText("héllo\nworld")
    const grab = await o.link.nextMessage(MessageType.ClipboardGrab, 0)
    expect(grab.payload).toEqual(concat(u32(0), u32(0), u32(ClipboardType.Utf8Text)))
    const from = o.link.messages.length
    await o.link.agentMessage(MessageType.ClipboardRequest, concat(u32(0), u32(ClipboardType.Utf8Text)))
    const data = await o.link.nextMessage(MessageType.Clipboard, from)
    expect(data.payload).toEqual(concat(u32(0), u32(ClipboardType.Utf8Text), utf8.encode("héllo\nworld")))
  })

  it("answers a request for a type it does not hold with empty data, so the guest's paste does not hang", async () => {
    o = await open()
    await o.session.setClipboardText("x")
    const from = o.link.messages.length
    await o.link.agentMessage(MessageType.ClipboardRequest, concat(u32(0), u32(ClipboardType.ImagePng)))
    const data = await o.link.nextMessage(MessageType.Clipboard, from)
    expect(data.payload).toEqual(concat(u32(0), u32(ClipboardType.ImagePng)))
  })

  it("surfaces a guest grab and fetches its text", async () => {
    o = await open()
    const grabbed = o.session.next("clipboard-grab")
    await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(0), u32(ClipboardType.Utf8Text)))
    expect(await grabbed).toEqual({ selection: 0, types: [ClipboardType.Utf8Text] })
    const text = o.session.requestClipboardText()
    const req = await o.link.nextMessage(MessageType.ClipboardRequest, 0)
    expect(req.payload).toEqual(concat(u32(0), u32(ClipboardType.Utf8Text)))
    await o.link.agentMessage(MessageType.Clipboard, concat(u32(0), u32(ClipboardType.Utf8Text), utf8.encode("from guest")))
    expect(await text).toBe("from guest")
  })

  it("ignores a guest grab with a stale serial and lets the client win a tie", async () => {
    o = await open()
    const grabs: number[][] = []
    o.session.on("clipboard-grab", (g) => grabs.push([...g.types]))
    await o.session.setClipboardText("mine") // our serial 0 → counter 1
    // The agent grabbed at the same moment with serial 0: a tie, which the client wins.
    await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(0), u32(ClipboardType.ImagePng)))
    // The agent's next grab carries serial 1: accepted.
    await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(1), u32(ClipboardType.Utf8Text)))
    await until(() => grabs.length > 0)
    expect(grabs).toEqual([[ClipboardType.Utf8Text]])
  })

  // A grab the agent made before it took a new controller's request=1 carries the old exchange's serial; counted from,
  // it would make every grab of the new exchange (serials from 0 again) look stale (found by reading the SDK's rule
  // against spice-vdagentd's).
  it("takes a guest grab the agent made before it took our request=1, and the grabs after it (serials from 0 again)", async () => {
    o = await open()
    const grabs: number[][] = []
    o.session.on("clipboard-grab", (g) => grabs.push([...g.types]))
    await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(5), u32(ClipboardType.ImagePng))) // old exchange
    await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(0), u32(ClipboardType.Utf8Text))) // after the reset
    await until(() => grabs.length === 2)
    expect(grabs).toEqual([[ClipboardType.ImagePng], [ClipboardType.Utf8Text]])
    // Still a tie after that: our grab at serial 1 crossed the agent's serial 1, and ours wins.
    await o.session.setClipboardText("mine")
    await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(1), u32(ClipboardType.ImagePng)))
    await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(2), u32(ClipboardType.Utf8Text)))
    await until(() => grabs.length === 3)
    expect(grabs[2]).toEqual([ClipboardType.Utf8Text])
  })

  it("converts line ends for a guest that announces CRLF", async () => {
    o = await open({ agent: { connected: true, caps: [AGENT_CAPS | (1 << 9)] } })
    await o.session.setClipboardText("a\nb")
    await o.link.agentMessage(MessageType.ClipboardRequest, concat(u32(0), u32(ClipboardType.Utf8Text)))
    const data = await o.link.nextMessage(MessageType.Clipboard, 0)
    expect(new TextDecoder().decode(data.payload.subarray(8))).toBe("a\r\nb")
  })

  it("decodes the guest's text only when it is read, once, with the line ends the agent announced when it came", async () => {
    o = await open({ agent: { connected: true, caps: [AGENT_CAPS | (1 << 9)] } })
    const decode = vi.spyOn(TextDecoder.prototype, "decode")
    try {
      const got = o.session.next("clipboard")
      await o.link.agentMessage(MessageType.Clipboard, concat(u32(0), u32(ClipboardType.Utf8Text), utf8.encode("a\r\nb"), Uint8Array.of(0)))
      const data = await got
      expect(decode).not.toHaveBeenCalled()
      expect(new TextDecoder().decode(data.data)).toBe("a\r\nb\0")
      decode.mockClear()
      // The agent comes back without CRLF: what came before it keeps the line ends it was sent with.
      o.link.send({ t: "agent", connected: true, caps: [AGENT_CAPS] })
      await until(() => o!.session.agent.caps?.[0] === AGENT_CAPS)
      expect(data.text).toBe("a\nb")
      expect(data.text).toBe("a\nb")
      expect(decode).toHaveBeenCalledTimes(1)
    } finally {
      decode.mockRestore()
    }
  })

  it("refuses clipboard calls when policy removed CLIPBOARD_BY_DEMAND from the agent's caps", async () => {
    o = await open({ agent: { connected: true, caps: [AGENT_CAPS & ~(1 << 5) & ~(1 << 6)] } })
    await expect(o.session.setClipboardText("x")).rejects.toMatchObject({ reason: "not-supported" })
  })
})

describe("roles", () => {
  it("a viewer takes control when the relay grants it, then announces itself to the agent", async () => {
    o = await open({}, { role: "viewer" })
    const taking = o.session.takeControl()
    await o.link.next((f) => f.t === "control")
    o.link.send({ t: "role", role: "controller" })
    await taking
    expect(o.session.role).toBe("controller")
    const announce = await o.link.nextMessage(MessageType.AnnounceCapabilities, 0)
    expect(readU32LE(announce.payload, 0)).toBe(1)
  })

  it("take control is refused with the relay's notice", async () => {
    o = await open({}, { role: "viewer" })
    const taking = o.session.takeControl()
    await o.link.next((f) => f.t === "control")
    o.link.send({ t: "notice", code: "dropped-by-role", detail: "this token is for viewers" })
    await expect(taking).rejects.toMatchObject({ reason: "not-controller", detail: "this token is for viewers" })
  })

  it("a controller demoted to viewer fails its queued messages", async () => {
    o = await open({ credit: 0 })
    const pending = o.session.setClipboardText("x")
    o.link.send({ t: "role", role: "viewer" })
    await expect(pending).rejects.toMatchObject({ reason: "not-controller" })
  })
})

describe("monitors", () => {
  it("sends one monitor as exactly 8 + 20 bytes with USE_POS and resolves on the agent's SUCCESS reply", async () => {
    o = await open()
    const done = o.session.setResolution(1280, 720)
    const m = await o.link.nextMessage(MessageType.MonitorsConfig, 0)
    expect(m.payload).toEqual(u32(1, 1, 720, 1280, 32, 0, 0))
    await o.link.agentMessage(MessageType.Reply, u32(MessageType.MonitorsConfig, 1))
    await expect(done).resolves.toBeUndefined()
  })

  it("rejects on the agent's ERROR reply", async () => {
    o = await open()
    const done = o.session.setResolution(1, 1)
    await o.link.nextMessage(MessageType.MonitorsConfig, 0)
    await o.link.agentMessage(MessageType.Reply, u32(MessageType.MonitorsConfig, 2))
    await expect(done).rejects.toMatchObject({ reason: "agent-error" })
  })
})

describe("mouse", () => {
  it("sends absolute positions as mouse frames", async () => {
    o = await open()
    o.session.sendMouse({ x: 10.4, y: 20, buttons: 2 })
    expect(await o.link.next((f) => f.t === "mouse")).toEqual({ t: "mouse", x: 10, y: 20, buttons: 2, display: 0 })
  })
})
