// Regression (found by `npm run chaos`, fault client-drop-mid-receive): a console whose link dropped while the guest's
// clipboard answer was arriving waited forever. The relay aborts a message half received when the link dropped and
// does not replay the gap (docs/protocol.md, client link §5), so the request must fail, not hang.
import { afterEach, expect, it } from "vitest"
import { ClipboardType, MessageType } from "../../../src/client/index.ts"
import { type Opened, concat, open, u32 } from "./helpers.ts"

let o: Opened | undefined
afterEach(async () => {
  await o?.done()
  o = undefined
})

it("fails a clipboard request whose answer was cut by a link drop, and the next request works", async () => {
  o = await open({}, { reconnect: { minDelayMs: 1, maxDelayMs: 5 } })
  const grabbed = o.session.next("clipboard-grab")
  await o.link.agentMessage(MessageType.ClipboardGrab, concat(u32(0), u32(0), u32(ClipboardType.Utf8Text)))
  await grabbed
  const asked = o.session.requestClipboardText().then(
    () => "resolved",
    (e: { reason?: string }) => e.reason ?? "rejected",
  )
  await o.link.nextMessage(MessageType.ClipboardRequest, 0)
  const answer = concat(u32(0), u32(ClipboardType.Utf8Text), new TextEncoder().encode("x".repeat(1000)))
  await o.link.fragments(o.link.nextSeq(), MessageType.Clipboard, answer, [100], 100)
  await o.link.terminate()
  const link2 = await o.relay.helloed(1)
  link2.welcome({ resume: "r-2", resumed: true })
  link2.setSeq(o.link.nextSeq()) // seqs keep increasing across links
  expect(await asked).toBe("interrupted")
  const again = o.session.requestClipboardText()
  await link2.nextMessage(MessageType.ClipboardRequest, 0)
  await link2.agentMessage(MessageType.Clipboard, concat(u32(0), u32(ClipboardType.Utf8Text), new TextEncoder().encode("after")))
  expect(await again).toBe("after")
})
