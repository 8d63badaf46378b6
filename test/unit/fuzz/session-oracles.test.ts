// The session fuzzers' whole-stream oracles fail on defects a per-message check lets through: a whole guest-bound
// message written twice or out of a console's order, and a whole agent message delivered to a console out of seq
// order or replayed with other content. (Seeded fuzz programs rarely produce these against a correct relay, so each
// oracle is shown failing on an injected sequence.)
import { describe, expect, it } from "vitest"
import { Features, FuzzFailure } from "../../harness/fuzz/engine.ts"
import { ClientView } from "../../harness/fuzz/session/client-view.ts"
import { checkContent } from "../../harness/fuzz/session/settle.ts"
import { SessionWorld } from "../../harness/fuzz/session/world.ts"
import { fnv } from "../../harness/fuzz/reference.ts"
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"

const payload = (n: number): Uint8Array => Uint8Array.from({ length: 12 }, (_, i) => (i * 7 + n) & 0xff)

/** A world in which controller console "o" sent messages 1 and 2, and `written` (id, content) reached the guest. */
const world = (written: ReadonlyArray<readonly [id: number, n: number, named: boolean]>): SessionWorld => {
  const w = new SessionWorld(new Features())
  for (const n of [1, 2]) w.sentByClients.push({ controller: true, type: 4, hash: fnv(payload(n)) })
  w.guest.reset(1, 0)
  let pos = 0
  for (const [id, n, named] of written) {
    const data = encodeChunkedMessage(1, 4, payload(n))
    w.guest.receive({ t: "write", epoch: 1, pos, port: 1, data, end: true, ...(named ? { origin: "o", id } : {}) })
    pos += data.length
  }
  return w
}

const fails = (f: () => void): string => {
  try {
    f()
  } catch (e) {
    if (e instanceof FuzzFailure) return e.message
    throw e
  }
  return "held"
}

describe("session fuzz oracles on whole streams", () => {
  it("hold for each message written once, in order; a named repeat is what the bridge drops", () => {
    expect(fails(() => checkContent(world([[1, 1, true], [2, 2, true]])))).toBe("held")
    const w = world([[1, 1, true], [1, 1, true], [2, 2, true]])
    expect(w.guest.suppressed).toBe(1)
    expect(fails(() => checkContent(w))).toBe("held")
  })

  it("fail on a whole message written twice when the relay did not name it (the bridge cannot tell)", () => {
    expect(fails(() => checkContent(world([[1, 1, false], [1, 1, false], [2, 2, false]])))).toMatch(/more often than controllers sent it/)
  })

  it("fail on a console's messages written out of its order", () => {
    expect(fails(() => checkContent(world([[2, 2, true], [1, 1, true]])))).toMatch(/o message 1 reached the agent after its message 2/)
  })

  it("fail on an agent message delivered out of seq order, or replayed with other content", () => {
    const msg = (seq: number, n: number) => ({ t: "msg" as const, seq, type: 4, size: 12, data: payload(n), end: true })
    const ordered = new ClientView("c", "controller")
    ordered.receive({ t: "welcome", v: 1, session: "s", role: "controller", agent: { connected: true, caps: null }, policy: { copyPaste: true, fileTransfer: true, maxClipboardBytes: 1, maxMessageBytes: 1, viewersSeeClipboard: false }, credit: 1, resume: "" })
    ordered.receive(msg(1, 1))
    ordered.receive(msg(3, 3))
    expect(fails(() => ordered.receive(msg(1, 1)))).toBe("held") // a replay the SDK drops
    expect(fails(() => ordered.receive(msg(2, 2)))).toMatch(/seq 2 completed after seq 3: out of order/)
    expect(fails(() => ordered.receive(msg(3, 9)))).toMatch(/seq 3 delivered again with other content/)
  })
})
