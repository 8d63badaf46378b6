// Regression (found on the real VM, docs/reliability.md §2b finding 2, fault bridge-kill): the guest's 1 MiB clipboard
// answer was crossing when the bridge died; the relay aborted what the console had of it, the SDK reported the abort as
// an error event and kept the request waiting for an answer that could no longer come (neither resolved nor rejected in
// 120 s). Every request must settle: the data whole, or a rejection naming the reason.
import { afterEach, expect, it } from "vitest"
import { Cap, ClipboardType, MessageType } from "../../../src/client/index.ts"
import { buildCaps } from "../../../src/protocol/caps.ts"
import { SPICE_VDAGENT_CAPS } from "../../../src/protocol/known.ts"
import { type Opened, concat, open, u32, until } from "./helpers.ts"

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

/**
 * spice-vdagentd's grab-serial rule (spec §2, vdagentd.c do_client_capabilities / do_client_clipboard), restated: caps
 * with request=1 zero the serial; a client grab is taken when its serial is the daemon's (which then counts it) or one
 * below (the client wins a tie). Returns, per client grab after `from`, whether the daemon took it.
 */
const daemonTakes = (messages: ReadonlyArray<{ readonly type: number; readonly payload: Uint8Array }>, relayRequestAt: number): boolean[] => {
  let serial = 0
  const taken: boolean[] = []
  messages.forEach((m, i) => {
    if (i === relayRequestAt) serial = 0
    if (m.type === MessageType.AnnounceCapabilities && m.payload[0] === 1) serial = 0
    if (m.type !== MessageType.ClipboardGrab) return
    const s = new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(4, true)
    const ok = s === serial || s === ((serial - 1) >>> 0)
    if (s === serial) serial++
    if (i >= relayRequestAt) taken.push(ok)
  })
  return taken
}

it("relay re-announce: a grab crossing 'agent down' is lost to the old serials, so the SDK grabs again from serial 0 after its own request=1", async () => {
  o = await open()
  const x = o
  const caps = [SPICE_VDAGENT_CAPS]
  expect(buildCaps([Cap.ClipboardGrabSerial])[0]! & caps[0]!).not.toBe(0)
  await x.session.setClipboardText("one")
  await x.session.setClipboardText("two")
  // The bridge restarts: the relay writes its own request=1 to the new connection (the daemon's serial is 0 from
  // here), while a grab the console made before it heard of it crosses "agent down" and reaches the agent after it.
  const relayRequestAt = x.link.messages.length
  await x.session.setClipboardText("crossing")
  let grab: Promise<void> | undefined
  x.session.on("agent", (a) => {
    if (a.connected && a.caps !== null && grab === undefined) grab = x.session.setClipboardText("after")
  })
  x.link.send({ t: "agent", connected: false, caps: null })
  x.link.send({ t: "agent", connected: true, caps: null })
  await x.link.nextMessage(MessageType.AnnounceCapabilities, relayRequestAt)
  x.link.send({ t: "agent", connected: true, caps })
  await until(() => grab !== undefined)
  await grab
  const sent = x.link.messages.slice(relayRequestAt).filter((m) => m.type !== MessageType.MaxClipboard)
  // The crossing grab, the SDK's request=1, its offer grabbed again, then what the "agent" listener grabbed.
  expect(sent.map((m) => m.type)).toEqual([MessageType.ClipboardGrab, MessageType.AnnounceCapabilities, MessageType.ClipboardGrab, MessageType.ClipboardGrab])
  expect(daemonTakes(x.link.messages, relayRequestAt)).toEqual([false, true, true])
  // The guest pastes: the console answers with what it offers now.
  const from = x.link.messages.length
  await x.link.agentMessage(MessageType.ClipboardRequest, concat(u32(0), u32(ClipboardType.Utf8Text)))
  const data = await x.link.nextMessage(MessageType.Clipboard, from)
  expect(new TextDecoder().decode(data.payload.subarray(8))).toBe("after")
})
