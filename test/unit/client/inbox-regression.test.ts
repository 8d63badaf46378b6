// Regression (found by `npm run fuzz -- --target client-inbox`): a message that arrived whole in one frame bypassed
// maxMessageBytes; like a fragmented one it must be dropped and reported, and a replay of it must not surface later.
import { expect, it } from "vitest"
import { Inbox } from "../../../src/client/inbox.ts"

it("drops and reports a one-frame message over maxMessageBytes, and skips its replay", () => {
  const inbox = new Inbox(16, 1024, () => {})
  inbox.linkOpened()
  const data = new Uint8Array(40)
  const r = inbox.push({ t: "msg", seq: 1, type: 4, size: 40, data, end: true })
  expect(r).toMatchObject({ _tag: "Dropped", seq: 1, type: 4 })
  expect(inbox.push({ t: "msg", seq: 1, type: 4, size: 40, data, end: true })).toBeUndefined()
  const ok = inbox.push({ t: "msg", seq: 2, type: 3, size: 8, data: new Uint8Array(8), end: true })
  expect(ok).toMatchObject({ _tag: "Message", message: { seq: 2, type: 3 } })
})
