// Found by the e2e chaos fault takeover-mid-send (about 1 run in 4): another console took control while this one was
// sending its answer to the guest's paste; the SDK gave the answer up itself (a viewer does not write to the agent),
// the relay had nothing to say about it, and the console was told nothing while the guest's paste failed. An answer
// that is not delivered is now an `error` unless a relay notice (already a `notice` event) said why.
import { describe, expect, it } from "vitest"
import { ClipboardType } from "../../../src/protocol/constants.ts"
import { Clipboard } from "../../../src/client/clipboard.ts"
import { ClientError } from "../../../src/client/errors.ts"

const request = { _tag: "ClipboardRequest", selection: 0, dataType: ClipboardType.Utf8Text } as const

const answering = (failure: ClientError) => {
  const lost: ClientError[] = []
  const sent: string[] = []
  const cb = new Clipboard({
    send: async (m) => {
      sent.push(m._tag)
      throw failure
    },
    agentCaps: () => null,
    isController: () => true,
    grabbed: () => {},
    released: () => {},
    data: () => {},
    answerLost: (e) => lost.push(e),
  })
  cb.receive(request)
  return { lost, sent }
}

describe("the answer to a guest paste that is not delivered", () => {
  it("is told to the console when the SDK gave it up (it became a viewer while sending)", async () => {
    const { lost, sent } = answering(new ClientError("not-controller", "this console became a viewer"))
    await new Promise((r) => setTimeout(r, 0))
    expect(sent).toEqual(["Clipboard"])
    expect(lost.map((e) => e.reason)).toEqual(["not-controller"])
  })

  it("is not told twice when a relay notice already said why", async () => {
    const { lost } = answering(new ClientError("interrupted", "dropped by disconnect", { notice: "dropped-by-disconnect" }))
    await new Promise((r) => setTimeout(r, 0))
    expect(lost).toEqual([])
  })
})
