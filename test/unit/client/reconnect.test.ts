// Drops and resumes: the SDK reconnects with its resume token and last seq, skips replayed messages, resends what the
// relay never acknowledged, and gives up for good on closes that would only repeat (policy, protocol).
import { afterEach, describe, expect, it } from "vitest"
import { MessageType } from "../../../src/client/index.ts"
import { type Opened, open, u32 } from "./helpers.ts"
import { readU32LE } from "../../../src/protocol/bytes.ts"

let o: Opened | undefined
afterEach(async () => {
  await o?.done()
  o = undefined
})
const fast = { reconnect: { minDelayMs: 1, maxDelayMs: 5 } }

describe("reconnect", () => {
  it("resumes with its token and last seq, and does not deliver a replayed message twice", async () => {
    o = await open({}, fast)
    const seen: number[] = []
    o.session.on("message", (m) => m.type === MessageType.Reply && seen.push(m.seq))
    await o.link.agentMessage(MessageType.Reply, u32(2, 1))
    await o.link.agentMessage(MessageType.Reply, u32(2, 1))
    // Half of message 3 arrives, then the link drops.
    const seq3 = o.link.nextSeq()
    await o.link.fragments(seq3, MessageType.Reply, u32(2, 1), [3], 3)
    const states: string[] = []
    o.session.on("state", (s) => states.push(s))
    await o.link.close(1001, "going away")
    const link2 = await o.relay.helloed(1)
    expect(link2.hello).toMatchObject({ resume: "r-1", lastSeq: 2 })
    link2.welcome({ resume: "r-2" })
    link2.setSeq(1) // the relay replays from an older point than it needed to: 2 again, then 3 whole
    const third = new Promise<void>((r) => o!.session.on("message", (m) => m.seq === 3 && r()))
    for (let i = 0; i < 2; i++) await link2.agentMessage(MessageType.Reply, u32(2, 1))
    await third
    expect(seen).toEqual([1, 2, 3])
    expect(states).toEqual(["reconnecting", "open"])
  })

  it("sends again, whole, a message the relay had not acknowledged when the link dropped, if it kept the seat", async () => {
    o = await open({}, fast)
    o.link.autoAck = false
    const sent = o.session.setResolution(640, 480).catch((e: unknown) => e)
    const first = await o.link.nextMessage(MessageType.MonitorsConfig, 0)
    await o.link.terminate()
    const link2 = await o.relay.helloed(1)
    link2.welcome({ resume: "r-2", resumed: true })
    const again = await link2.nextMessage(MessageType.MonitorsConfig, 0)
    expect(again).toEqual({ ...first, id: first.id })
    await link2.agentMessage(MessageType.Reply, u32(MessageType.MonitorsConfig, 1))
    expect(await sent).toBeUndefined()
  })

  it("does not announce caps again when it resumes its controller seat with the agent still there", async () => {
    o = await open({}, fast)
    await o.link.nextMessage(MessageType.AnnounceCapabilities, 0)
    await o.link.close(1001)
    const link2 = await o.relay.helloed(1)
    link2.welcome({ resume: "r-2", resumed: true })
    void o.session.setResolution(1, 1).catch(() => {})
    await link2.nextMessage(MessageType.MonitorsConfig, 0)
    expect(link2.messages.map((m) => m.type)).toEqual([MessageType.MonitorsConfig])
    await o.session.close()
  })

  it("on a new seat, fails what was unacknowledged instead of replaying it, and introduces itself to the agent again", async () => {
    o = await open({}, fast)
    o.link.autoAck = false
    const grab = o.session.setClipboardText("b").catch((e: unknown) => e)
    const file = o.session.sendFile({ name: "f", data: new Uint8Array(10) })
    await o.link.nextMessage(MessageType.FileXferStart, 0)
    await o.link.close(1001)
    const link2 = await o.relay.helloed(1)
    link2.welcome({ resume: "r-2" })
    expect(await grab).toMatchObject({ reason: "interrupted" })
    await expect(file.done).rejects.toMatchObject({ reason: "interrupted" })
    const announce = await link2.nextMessage(MessageType.AnnounceCapabilities, 0)
    expect(readU32LE(announce.payload, 0)).toBe(1)
    expect(link2.messages.some((m) => m.type === MessageType.ClipboardGrab || m.type === MessageType.FileXferStart)).toBe(false)
  })

  it("sends again on a resend notice", async () => {
    o = await open()
    o.link.autoAck = false
    void o.session.setResolution(2, 2).catch(() => {})
    const first = await o.link.nextMessage(MessageType.MonitorsConfig, 0)
    o.link.send({ t: "notice", code: "resend", id: first.id, detail: "relay restarted" })
    const again = await o.link.nextMessage(MessageType.MonitorsConfig, o.link.messages.indexOf(first) + 1)
    expect(again.payload).toEqual(first.payload)
  })

  it("ends the session on a policy close, failing what was pending", async () => {
    o = await open({ credit: 0 }, fast)
    const pending = o.session.setClipboardText("x").catch((e: unknown) => e)
    const closed = o.session.next("close")
    o.link.send({ t: "error", code: "policy", detail: "token expired" })
    await o.link.close(1008, "policy")
    expect(await closed).toMatchObject({ code: 1008, reconnecting: false })
    expect(await pending).toMatchObject({ reason: "closed", extra: { link: "policy" } })
    expect(o.session.state).toBe("closed")
    expect(o.relay.links).toHaveLength(1)
  })

  it("asks a token function for a fresh token on each attempt", async () => {
    let n = 0
    o = await open({}, { ...fast, token: () => `t${++n}` })
    await o.link.close(1011)
    const link2 = await o.relay.helloed(1)
    expect(link2.protocols).toContain("vdrelay.token.t2")
  })
})
