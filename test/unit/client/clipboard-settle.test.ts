// Regression (found on the real VM, docs/reliability.md §2b finding 2, fault bridge-kill): the guest's 1 MiB clipboard
// answer was crossing when the bridge died; the relay aborted what the console had of it, the SDK reported the abort as
// an error event and kept the request waiting for an answer that could no longer come (neither resolved nor rejected in
// 120 s). Every request must settle: the data whole, or a rejection naming the reason.
import { afterEach, expect, it } from "vitest"
import { Cap, ClipboardType, MessageType } from "../../../src/client/index.ts"
import { buildCaps } from "../../../src/protocol/caps.ts"
import { decodeAnnounceCapabilities } from "../../../src/protocol/codec-misc.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"
import { type Opened, concat, open, u32 } from "./helpers.ts"

let o: Opened | undefined
afterEach(async () => {
  await o?.done()
  o = undefined
})

const settled = (p: Promise<unknown>): Promise<string> =>
  p.then(
    (v) => `resolved ${String(v).length}`,
    (e: { reason?: string }) => `rejected ${e.reason ?? "?"}`,
  )

/** A guest grab in `selection` the SDK takes, then a text request in it, seen by the relay. */
const askGuest = async (x: Opened, selection: number): Promise<{ readonly outcome: Promise<string> }> => {
  const grabbed = x.session.next("clipboard-grab")
  await x.link.agentMessage(MessageType.ClipboardGrab, concat(u32(selection), u32(0), u32(ClipboardType.Utf8Text)))
  await grabbed
  const from = x.link.messages.length
  const asked = settled(x.session.requestClipboardText(selection))
  await x.link.nextMessage(MessageType.ClipboardRequest, from)
  return { outcome: asked }
}

const answer = (selection: number, n: number): Uint8Array =>
  concat(u32(selection), u32(ClipboardType.Utf8Text), new TextEncoder().encode("g".repeat(n)))

it("a guest clipboard answer the relay aborts fails its request at once; a request in another selection still gets its answer", async () => {
  o = await open()
  const primary = await askGuest(o, 1)
  const clipboard = await askGuest(o, 0)
  const seq = o.link.nextSeq()
  await o.link.fragments(seq, MessageType.Clipboard, answer(0, 200_000), [65_536, 65_536], 100_000)
  o.link.send({ t: "abort", seq, reason: "dropped-by-disconnect" })
  expect(await clipboard.outcome).toBe("rejected aborted")
  await o.link.agentMessage(MessageType.Clipboard, answer(1, 10))
  expect(await primary.outcome).toBe("resolved 10")
  // The next request in the aborted selection takes the next answer, not a stale one.
  const again = settled(o.session.requestClipboardText(0))
  await o.link.nextMessage(MessageType.ClipboardRequest, o.link.messages.length)
  await o.link.agentMessage(MessageType.Clipboard, answer(0, 5))
  expect(await again).toBe("resolved 5")
})

it("a guest clipboard answer over maxMessageBytes fails its request as too-large", async () => {
  o = await open({}, { maxMessageBytes: 1000 })
  const asked = await askGuest(o, 0)
  await o.link.fragments(o.link.nextSeq(), MessageType.Clipboard, answer(0, 5000), [600, 600])
  expect(await asked.outcome).toBe("rejected too-large")
})

it("agent back: the controller's request=1 goes out before anything an 'agent' listener sends, which counts from serial 0", async () => {
  o = await open()
  const x = o
  await x.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(0), u32(ClipboardType.Utf8Text)))
  await x.session.setClipboardText("before")
  await x.session.setClipboardText("before, again") // our serial is now past 0
  const caps = [SPICE_VDAGENT_CAPS]
  let grab: Promise<void> | undefined
  x.session.on("agent", (a) => {
    if (a.connected && a.caps !== null && grab === undefined) grab = x.session.setClipboardText("after")
  })
  const from = x.link.messages.length
  x.link.send({ t: "agent", connected: false, caps: null })
  x.link.send({ t: "agent", connected: true, caps })
  await x.link.nextMessage(MessageType.ClipboardGrab, from)
  await grab
  const sent = x.link.messages.slice(from).filter((m) => m.type === MessageType.AnnounceCapabilities || m.type === MessageType.ClipboardGrab)
  expect(sent.map((m) => m.type)).toEqual([MessageType.AnnounceCapabilities, MessageType.ClipboardGrab])
  const a = decodeAnnounceCapabilities(sent[0]!.payload)
  expect(a._tag === "Ok" && a.value.request).toBe(true)
  // selection 0, then the serial: the agent zeroed its serials at our request=1
  expect(Array.from(sent[1]!.payload.subarray(4, 8))).toEqual([0, 0, 0, 0])
  expect(buildCaps([Cap.ClipboardGrabSerial])[0]! & caps[0]!).not.toBe(0)
})
