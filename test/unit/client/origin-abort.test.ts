// The SDK names its messages for the bridge's at-most-once writes (hello.origin: random, one per session object, kept
// across reconnects), and reports a relay `abort` of an agent message for what it is.
import { afterEach, expect, it } from "vitest"
import { type ClientError, MessageType } from "../../../src/client/index.ts"
import { type Opened, open, u32 } from "./helpers.ts"

const opened: Opened[] = []
afterEach(async () => {
  for (const o of opened.splice(0)) await o.done()
})

it("says the same random origin on every link of a session, another one in another session", async () => {
  const o = await open({}, { reconnect: { minDelayMs: 1, maxDelayMs: 5 } })
  opened.push(o)
  const origin = o.link.hello!.origin!
  expect(origin).toMatch(/^[0-9a-f]{32}$/)
  expect(o.session.origin).toBe(origin)
  await o.link.terminate()
  const link2 = await o.relay.helloed(1)
  expect(link2.hello!.origin).toBe(origin)
  link2.welcome({ resume: "r-2", resumed: true })
  const other = await open()
  opened.push(other)
  expect(other.link.hello!.origin).not.toBe(origin)
})

it("reports a relay abort of a half-received agent message as 'aborted' with its notice code, not 'too-large'", async () => {
  const o = await open()
  opened.push(o)
  const errors: ClientError[] = []
  o.session.on("error", (e) => errors.push(e))
  const seq = o.link.nextSeq()
  await o.link.fragments(seq, MessageType.Reply, u32(2, 1), [3], 3)
  o.link.send({ t: "abort", seq, reason: "dropped-by-disconnect" })
  const seen = new Promise<number>((r) => o.session.on("message", (m) => r(m.seq)))
  await o.link.agentMessage(MessageType.Reply, u32(2, 1))
  await seen
  expect(errors.map((e) => [e.reason, e.extra.notice])).toEqual([["aborted", "dropped-by-disconnect"]])
})

it("tells the relay (abort) when it gives up a message the relay asked for again, which holds back its later ones", async () => {
  const { Outbox } = await import("../../../src/client/outbox.ts")
  const { ClientError } = await import("../../../src/client/errors.ts")
  const frames: Array<{ t: string; id?: number }> = []
  const out = new Outbox({ maxFragment: 1000, send: (f) => frames.push(f) })
  out.linkOpened(10)
  const p = out.enqueue(4, new Uint8Array(10), "file:1").catch((e: ClientError) => e.reason)
  out.notice(1, "resend", "restart") // back in the queue, no credit left to send it
  out.cancel((m) => m.group === "file:1", new ClientError("cancelled", "test"))
  expect(await p).toBe("cancelled")
  expect(frames.map((f) => f.t)).toEqual(["msg", "abort"])
})

it("marks a message it sends again (after resend or on a new link) with `again`, the first attempt without", async () => {
  const { Outbox } = await import("../../../src/client/outbox.ts")
  const frames: Array<{ t: string; id?: number; again?: boolean }> = []
  const out = new Outbox({ maxFragment: 1000, send: (f) => frames.push(f) })
  out.linkOpened(1 << 20)
  void out.enqueue(4, new Uint8Array(10))
  out.notice(1, "resend", "restart")
  out.linkClosed()
  out.linkOpened(1 << 20)
  expect(frames.map((f) => [f.t, f.id, f.again === true])).toEqual([["msg", 1, false], ["msg", 1, true], ["msg", 1, true]])
})

it("sends a message the relay asks for again ahead of a later one it was half sending (aborted and restarted after it)", async () => {
  const { Outbox } = await import("../../../src/client/outbox.ts")
  const frames: Array<{ t: string; id?: number }> = []
  const out = new Outbox({ maxFragment: 4, send: (f) => frames.push(f) })
  out.linkOpened(6)
  void out.enqueue(4, new Uint8Array(4)).catch(() => {})
  void out.enqueue(4, new Uint8Array(10)).catch(() => {})
  expect(frames.map((f) => [f.t, f.id])).toEqual([["msg", 1], ["msg", 2]]) // 1 whole, 2 half sent (credit spent)
  out.notice(1, "resend", "tunnel")
  out.addCredit(100)
  expect(frames.slice(2).map((f) => [f.t, f.id])).toEqual([["abort", 2], ["msg", 1], ["msg", 2], ["more", 2], ["more", 2]])
})
