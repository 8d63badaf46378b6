// Each way a link frame can be refused, with the typed reason it must yield: size cap, msgpack bombs, nesting, types,
// ranges, byte lengths, versions. Frames are written as hex so every byte is visible.
import { Packr } from "msgpackr"
import { describe, expect, it } from "vitest"
import { decodeBridgeToRelay, decodeRelayToBridge } from "../../../src/link/bridge-codec.ts"
import { decodeClientToRelay, decodeRelayToClient } from "../../../src/link/client-codec.ts"
import { linkErrorOfDecode, type LinkDecoded } from "../../../src/link/codec.ts"
import { MAX_FRAME_BYTES } from "../../../src/link/types.ts"

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+|#.*$/gm, "").match(/../g)?.map((b) => parseInt(b, 16)) ?? [])
// A second, independent encoder for hand-made frames (may include fields our encoders never write).
const pack = (v: unknown): Uint8Array => new Packr({ useRecords: false, variableMapSize: true }).pack(v)

const reasonOf = (r: LinkDecoded<unknown>): string => (r._tag === "Invalid" ? r.reason : "ok")

describe("envelope", () => {
  it("refuses a frame over the cap before parsing it, as too-big (1009)", () => {
    const r = decodeClientToRelay(new Uint8Array(MAX_FRAME_BYTES + 1))
    expect(reasonOf(r)).toBe("frame-too-big")
    expect(r._tag === "Invalid" && linkErrorOfDecode(r)).toBe("too-big")
    expect(reasonOf(decodeClientToRelay(pack({ t: "ping", n: 1 }), 4))).toBe("frame-too-big")
  })

  it.each([
    ["empty", ""],
    ["not a map (array)", "91 01"],
    ["not a map (string)", "a1 74"],
    ["array32 declaring 4 G items in 13 bytes", "81 a1 74 dd ffffffff 00 00 00 00"],
    ["map32 declaring 2^31 entries", "df 7fffffff a1 74"],
    ["str32 declaring 4 GiB", "81 a1 74 db ffffffff 61"],
    ["bin32 declaring 4 GiB", "82 a1 74 a4 70 69 6e 67 a1 6e c6 ffffffff 00"],
    ["truncated map", "82 a1 74 a4 70 69 6e 67"],
    ["trailing bytes", "82 a1 74 a4 70 69 6e 67 a1 6e 01 c0"],
    ["integer map key", "82 a1 74 a4 70 69 6e 67 01 01"],
    ["ext (msgpackr's undefined)", "82 a1 74 a4 70 69 6e 67 a1 6e d4 00 00"],
    ["ext8 (a record)", "82 a1 74 a4 70 69 6e 67 a1 6e c7 01 72 00"],
    ["reserved 0xc1", "82 a1 74 a4 70 69 6e 67 a1 6e c1"],
  ])("refuses %s as malformed (1002)", (_name, bytes) => {
    const r = decodeClientToRelay(hex(bytes))
    expect(reasonOf(r)).toBe("malformed")
    expect(r._tag === "Invalid" && linkErrorOfDecode(r)).toBe("protocol")
  })

  it("refuses nesting deeper than any frame needs", () => {
    // {t: "ping", n: [[[1]]]}: map > array > array > array is four containers deep.
    expect(reasonOf(decodeClientToRelay(hex("82 a1 74 a4 70 69 6e 67 a1 6e 91 91 91 01")))).toBe("too-deep")
    // 10,000 nested arrays: refused by the scan long before msgpackr's recursion could overflow the stack.
    const deep = new Uint8Array(10_012).fill(0x91)
    deep.set(hex("82 a1 74 a4 70 69 6e 67 a1 6e"), 0)
    expect(reasonOf(decodeClientToRelay(deep))).toBe("too-deep")
  })

  it("refuses a missing or unknown frame type", () => {
    expect(reasonOf(decodeClientToRelay(pack({ n: 1 })))).toBe("unknown-frame")
    expect(reasonOf(decodeClientToRelay(pack({ t: "welcome", v: 1 })))).toBe("unknown-frame")
    expect(reasonOf(decodeClientToRelay(pack({ t: "toString" })))).toBe("unknown-frame")
    expect(reasonOf(decodeClientToRelay(pack({ t: "__proto__" })))).toBe("unknown-frame")
    expect(reasonOf(decodeClientToRelay(pack({ t: 7 })))).toBe("unknown-frame")
  })

  it("ignores unknown fields (forward compatible) and never copies them into the frame", () => {
    const r = decodeClientToRelay(pack({ t: "ping", n: 3, extra: "x", __proto__x: 1 }))
    expect(r).toEqual({ _tag: "Ok", value: { t: "ping", n: 3 } })
  })
})

describe("fields", () => {
  const hello = { t: "hello", v: 1, client: "sdk/1", role: "controller", caps: [1] }
  it.each([
    ["a link version we do not speak", { ...hello, v: 2 }, "bad-version"],
    ["a string version", { ...hello, v: "1" }, "bad-version"],
    ["an unknown role", { ...hello, role: "operator" }, "bad-field"],
    ["caps that are not uint32 words", { ...hello, caps: [2 ** 32] }, "bad-field"],
    ["too many caps words", { ...hello, caps: new Array(33).fill(0) }, "bad-field"],
    ["a negative lastSeq", { ...hello, lastSeq: -1 }, "bad-field"],
    ["a missing field", { t: "hello", v: 1, role: "viewer", caps: [] }, "bad-field"],
    ["a fractional number", { t: "ping", n: 1.5 }, "bad-field"],
    ["a string where a number goes", { t: "credit", bytes: "9" }, "bad-field"],
    ["an id over uint32", { t: "abort", id: 2 ** 32 }, "bad-field"],
    ["a bool as 0/1", { t: "more", id: 1, data: new Uint8Array(1), end: 0 }, "bad-field"],
    ["data given as a string", { t: "more", id: 1, data: "AAAA", end: true }, "bad-field"],
    ["data longer than the declared size", { t: "msg", id: 1, type: 1, size: 2, data: new Uint8Array(3), end: false }, "bad-field"],
    ["a one-frame message shorter than its size", { t: "msg", id: 1, type: 1, size: 4, data: new Uint8Array(3), end: true }, "bad-field"],
    ["a size over uint32", { t: "msg", id: 1, type: 1, size: 2 ** 32, data: new Uint8Array(0), end: false }, "bad-field"],
    ["a valid hello", hello, "ok"],
    ["a nil optional field (absent)", { ...hello, resume: null }, "ok"],
    ["a hello naming its origin", { ...hello, origin: "0123456789abcdef0123456789abcdef" }, "ok"],
    ["an origin over 64 characters", { ...hello, origin: "a".repeat(65) }, "bad-field"],
    ["an origin that is not a string", { ...hello, origin: 12 }, "bad-field"],
  ])("client→relay: %s", (_name, frame, reason) => {
    expect(reasonOf(decodeClientToRelay(pack(frame)))).toBe(reason)
  })

  it("relay→client: validates nested maps with a dotted path", () => {
    const welcome = {
      t: "welcome", v: 1, session: "s", role: "viewer", credit: 1, resume: "r",
      agent: { connected: true, caps: null },
      policy: { copyPaste: true, fileTransfer: true, maxClipboardBytes: 1, maxMessageBytes: 1, viewersSeeClipboard: false },
    }
    expect(reasonOf(decodeRelayToClient(pack(welcome)))).toBe("ok")
    const r = decodeRelayToClient(pack({ ...welcome, policy: { ...welcome.policy, copyPaste: "yes" } }))
    expect(r).toMatchObject({ reason: "bad-field", detail: "policy.copyPaste: not a boolean" })
    expect(reasonOf(decodeRelayToClient(pack({ ...welcome, agent: [1] })))).toBe("bad-field")
  })

  it("bridge→relay: positions are safe integers, ports are a known level", () => {
    expect(reasonOf(decodeBridgeToRelay(pack({ t: "data", epoch: 0, pos: 2 ** 53, bytes: new Uint8Array(1) })))).toBe("bad-field")
    expect(reasonOf(decodeBridgeToRelay(pack({ t: "data", epoch: 0, pos: 2 ** 53 - 1, bytes: new Uint8Array(1) })))).toBe("ok")
    expect(reasonOf(decodeBridgeToRelay(pack({ t: "hello", v: 1, bridge: "b", epoch: 1, chardev: true, from: 0, wrote: 0, port: "ajar" })))).toBe("bad-field")
  })

  it("relay→bridge: a write names its message with origin and id together or not at all", () => {
    const write = { t: "write", epoch: 1, pos: 0, port: 1, data: new Uint8Array(1), end: true }
    expect(decodeRelayToBridge(pack({ ...write, origin: "o1", id: 7 }))).toEqual({ _tag: "Ok", value: { ...write, origin: "o1", id: 7 } })
    expect(decodeRelayToBridge(pack(write))).toEqual({ _tag: "Ok", value: write })
    expect(reasonOf(decodeRelayToBridge(pack({ ...write, origin: "o1" })))).toBe("bad-field")
    expect(reasonOf(decodeRelayToBridge(pack({ ...write, id: 7 })))).toBe("bad-field")
    expect(reasonOf(decodeRelayToBridge(pack({ ...write, origin: "o1", id: 2 ** 32 })))).toBe("bad-field")
  })
})
