// File transfer against the fake relay: the START key file, nothing before CAN_SEND_DATA, DATA blocks byte-exact
// within the window, progress, success, cancel, and every refusal path.
import { afterEach, describe, expect, it } from "vitest"
import { ClientError, MessageType } from "../../../src/client/index.ts"
import type { FakeLink } from "./fake-relay.ts"
import { type Opened, concat, open, u32, until } from "./helpers.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"
import { readU32LE } from "../../../src/protocol/bytes.ts"

let o: Opened | undefined
afterEach(async () => {
  await o?.done()
  o = undefined
})

const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff)
const status = (link: FakeLink, id: number, result: number, detail: Uint8Array = new Uint8Array(0)) => link.agentMessage(MessageType.FileXferStatus, concat(u32(id, result), detail))
const idOf = (p: Uint8Array) => readU32LE(p, 0)
const dataOf = (link: FakeLink) => link.messages.filter((m) => m.type === MessageType.FileXferData)

describe("file transfer", () => {
  it("starts with the key file, waits for CAN_SEND_DATA, sends the file byte-exact and resolves on SUCCESS", async () => {
    o = await open()
    const file = bytes(200_000)
    const t = o.session.sendFile(new File([file as Uint8Array<ArrayBuffer>], "dir/../report é.bin"))
    const progress: number[] = []
    o.session.on("file-progress", (p) => progress.push(p.sent))
    const start = await o.link.nextMessage(MessageType.FileXferStart, 0)
    expect(idOf(start.payload)).toBe(t.id)
    expect(new TextDecoder().decode(start.payload.subarray(4))).toBe(`[vdagent-file-xfer]\nname=report é.bin\nsize=200000\n\0`)
    expect(dataOf(o.link)).toEqual([])
    await status(o.link, t.id, 0)
    await until(() => t.sent === file.length)
    const blocks = dataOf(o.link).map((m) => m.payload)
    expect(blocks.every((b) => b.length <= 12 + 65536 && idOf(b) === t.id)).toBe(true)
    expect(concat(...blocks.map((b) => b.subarray(12)))).toEqual(file)
    await status(o.link, t.id, 3)
    await t.done
    expect(t.status).toBe("done")
    expect(progress.at(-1)).toBe(file.length)
  })

  it("keeps far more than SPICE's 20 KiB in flight, but no more than its window", async () => {
    o = await open({ credit: 64 << 20 }, { fileWindowBytes: 1 << 20 })
    o.link.autoAck = false
    // Bytes in memory are read in microtasks, so the SDK has filled its window before the test's next turn.
    const t = o.session.sendFile({ name: "big", data: bytes(4 << 20) })
    await status(o.link, t.id, 0)
    // The window is full once the SDK stops: it asks nothing more of its file until an ack arrives, and a control
    // frame sent after that point lands behind every DATA it was willing to send.
    await until(() => dataOf(o!.link).length >= 1)
    o.session.sendMouse({ x: 0, y: 0 })
    await o.link.next((f) => f.t === "mouse")
    const inFlight = dataOf(o.link).reduce((n, m) => n + m.payload.length - 12, 0)
    expect(inFlight).toBeGreaterThan(20 * 1024)
    expect(inFlight).toBeLessThanOrEqual((1 << 20) + 65536)
    // Acks open the window again.
    const before = dataOf(o.link).length
    for (const m of dataOf(o.link)) o.link.send({ t: "ack", id: m.id })
    await until(() => dataOf(o!.link).length > before)
    t.cancel()
  })

  it("an empty file sends one empty DATA", async () => {
    o = await open()
    const t = o.session.sendFile({ name: "empty", data: new Uint8Array(0) })
    await status(o.link, t.id, 0)
    const d = await o.link.nextMessage(MessageType.FileXferData, 0)
    expect(d.payload).toEqual(concat(u32(t.id, 0, 0)))
  })

  it("cancel tells the agent CANCELLED, aborts a half-sent block and rejects with cancelled", async () => {
    o = await open({ credit: 100_000 }, { maxFragmentBytes: 30_000 })
    const t = o.session.sendFile({ name: "f", data: bytes(300_000) })
    await status(o.link, t.id, 0)
    await o.link.next((f) => f.t === "more")
    t.cancel()
    await o.link.next((f) => f.t === "abort")
    // Reported only once the agent was told (the relay acknowledged the STATUS): credit lets it go out.
    expect(t.status).toBe("sending")
    o.link.grantCredit(1 << 20)
    const st = await o.link.nextMessage(MessageType.FileXferStatus, 0)
    expect(st.payload).toEqual(u32(t.id, 1))
    await expect(t.done).rejects.toMatchObject({ reason: "cancelled" })
    expect(t.status).toBe("cancelled")
  })

  it("a block the relay refuses fails the transfer on both ends: STATUS ERROR behind the blocks already sent, then done rejects", async () => {
    o = await open()
    o.link.autoAck = false
    const t = o.session.sendFile({ name: "f", data: bytes(4 * 65536) })
    await status(o.link, t.id, 0)
    await until(() => dataOf(o!.link).length === 4)
    const [first, second] = dataOf(o.link)
    let settled = false
    t.done.catch(() => (settled = true))
    // The first block was lost in a tunnel grace that ran out; the agent connection may still hold a partial file.
    o.link.send({ t: "notice", code: "dropped-by-disconnect", id: first!.id, detail: "grace over" })
    const st = await o.link.nextMessage(MessageType.FileXferStatus, 0)
    expect(st.payload).toEqual(u32(t.id, 2))
    expect(st.id).toBeGreaterThan(Math.max(...dataOf(o.link).map((m) => m.id)))
    // The other blocks and the STATUS are answered: only then is the failure reported.
    o.link.send({ t: "ack", id: second!.id })
    for (const m of dataOf(o.link).slice(2)) o.link.send({ t: "ack", id: m.id })
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false)
    o.link.send({ t: "ack", id: st.id })
    await expect(t.done).rejects.toMatchObject({ reason: "agent-not-connected" })
    expect(t.status).toBe("failed")
    expect(dataOf(o.link)).toHaveLength(4)
  })

  it("never sends a block of a failed transfer again, even when the relay asks for a resend", async () => {
    o = await open()
    o.link.autoAck = false
    const t = o.session.sendFile({ name: "f", data: bytes(2 * 65536) })
    await status(o.link, t.id, 0)
    await until(() => dataOf(o!.link).length === 2)
    const [first, second] = dataOf(o.link)
    t.cancel()
    const st = await o.link.nextMessage(MessageType.FileXferStatus, 0)
    // A relay restart: the blocks it held whole are to be resent (same agent connection); so is the STATUS.
    for (const id of [first!.id, second!.id, st.id]) o.link.send({ t: "notice", code: "resend", id, detail: "restart" })
    const again = await o.link.nextMessage(MessageType.FileXferStatus, o.link.messages.length)
    o.link.send({ t: "ack", id: again.id })
    await expect(t.done).rejects.toMatchObject({ reason: "cancelled" })
    expect(dataOf(o.link)).toHaveLength(2)
  })

  it("tells the agent nothing when it ended the transfer itself; when it went out of sight, CANCELLED once it is back", async () => {
    o = await open()
    const a = o.session.sendFile({ name: "a", data: bytes(10) })
    await status(o.link, a.id, 0)
    await status(o.link, a.id, 1)
    await expect(a.done).rejects.toMatchObject({ reason: "cancelled" })
    const b = o.session.sendFile({ name: "b", data: bytes(10) })
    await o.link.nextMessage(MessageType.FileXferStart, 0)
    o.link.autoAck = false
    o.link.send({ t: "agent", connected: false, caps: null })
    await expect(b.done).rejects.toMatchObject({ reason: "agent-not-connected" })
    expect(o.link.messages.filter((m) => m.type === MessageType.FileXferStatus)).toEqual([])
    // The relay only lost sight of the agent (e.g. it restarted): once the agent is seen again, it is told CANCELLED.
    o.link.send({ t: "agent", connected: true, caps: [0x00038de7] })
    const st = await o.link.nextMessage(MessageType.FileXferStatus, 0)
    expect(st.payload).toEqual(u32(b.id, 1))
  })

  it("reports the agent's refusals: not enough space, disabled", async () => {
    o = await open()
    const a = o.session.sendFile({ name: "a", data: bytes(10) })
    await o.link.nextMessage(MessageType.FileXferStart, 0)
    await status(o.link, a.id, 4, concat(u32(1234, 0)))
    await expect(a.done).rejects.toMatchObject({ reason: "agent-error", detail: "not enough space in the guest (1234 bytes free)" })
    const b = o.session.sendFile({ name: "b", data: bytes(10) })
    await status(o.link, b.id, 7)
    await expect(b.done).rejects.toMatchObject({ reason: "disabled" })
  })

  it("says 'disabled by policy' when the relay drops the START", async () => {
    o = await open()
    o.link.autoAck = false
    const t = o.session.sendFile({ name: "a", data: bytes(10) })
    const start = await o.link.nextMessage(MessageType.FileXferStart, 0)
    o.link.send({ t: "notice", code: "dropped-by-policy", id: start.id, type: MessageType.FileXferStart, detail: "file transfer is disabled" })
    const err = await t.done.catch((e: ClientError) => e)
    expect(err).toMatchObject({ reason: "disabled", detail: "file transfer disabled by policy" })
  })

  it("refuses locally when the agent announces FILE_XFER_DISABLED or the policy forbids it", async () => {
    o = await open({ agent: { connected: true, caps: [SPICE_VDAGENT_CAPS | (1 << 13)] } })
    const t = o.session.sendFile({ name: "a", data: bytes(1) })
    await expect(t.done).rejects.toBeInstanceOf(ClientError)
    expect(t.status).toBe("failed")
    expect(o.link.messages.some((m) => m.type === MessageType.FileXferStart)).toBe(false)
  })

  it("fails transfers when the agent disconnects", async () => {
    o = await open()
    const t = o.session.sendFile({ name: "a", data: bytes(10) })
    await o.link.nextMessage(MessageType.FileXferStart, 0)
    o.link.send({ t: "agent", connected: false, caps: null })
    await expect(t.done).rejects.toMatchObject({ reason: "agent-not-connected" })
  })
})
