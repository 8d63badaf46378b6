// Property tests of the payload codecs: round trip for every message type and layout; bytes never make them throw.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeMessage, encodeMessage, messageTypeOf } from "../../../src/protocol/index.ts"
import { encodeMessageParts } from "../../../src/protocol/message-codec.ts"
import { layoutArb, messageArb } from "./arbitraries.ts"

describe("payload codecs", () => {
  it("decode(encode(m)) = m for every message type in every clipboard layout", () => {
    const tags = new Set<string>()
    fc.assert(
      fc.property(
        layoutArb.chain((o) => fc.tuple(fc.constant(o), messageArb(o))),
        ([o, m]) => {
          tags.add(m._tag)
          const bytes = encodeMessage(m, o)
          if (bytes._tag !== "Ok") throw new Error(`${m._tag}: ${bytes.reason} ${bytes.detail}`)
          expect(decodeMessage(messageTypeOf(m), bytes.value, o)).toEqual({ _tag: "Ok", value: m })
          // And the bytes are canonical: encoding the decoded value gives them back.
          const again = encodeMessage(m, o)
          expect(again._tag === "Ok" && Buffer.from(again.value).equals(Buffer.from(bytes.value))).toBe(true)
        },
      ),
      { numRuns: 4000 },
    )
    expect(tags.size).toBe(16)
  })

  it("head + body of encodeMessageParts are encodeMessage's bytes, and the body is the message's own data (a view, not a copy)", () => {
    const tags = new Set<string>()
    fc.assert(
      fc.property(
        layoutArb.chain((o) => fc.tuple(fc.constant(o), messageArb(o))),
        ([o, m]) => {
          const whole = encodeMessage(m, o)
          const parts = encodeMessageParts(m, o)
          if (whole._tag !== "Ok" || parts._tag !== "Ok") throw new Error(`${m._tag}: not encodable`)
          expect(Buffer.concat([parts.value.head, parts.value.body]).equals(Buffer.from(whole.value))).toBe(true)
          if (m._tag === "Clipboard" || m._tag === "FileXferData") {
            tags.add(m._tag)
            expect(parts.value.body).toBe(m.data)
          } else expect(parts.value.body.length).toBe(0)
        },
      ),
      { numRuns: 4000 },
    )
    expect(tags).toEqual(new Set(["Clipboard", "FileXferData"]))
  })

  it("never throws on arbitrary payloads, and whatever decodes re-encodes to a decodable payload", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 18 }), fc.uint8Array({ maxLength: 200 }), layoutArb, (type, payload, o) => {
        const d = decodeMessage(type, payload, o)
        if (d._tag !== "Ok") return
        const e = encodeMessage(d.value, o)
        // The agent's 1-byte RELEASE names its selection whatever the layout, so PRIMARY can come back unsendable.
        if (e._tag === "Invalid") expect(e.reason).toBe("Unrepresentable")
        else expect(decodeMessage(type, e.value, o)._tag).toBe("Ok")
      }),
      { numRuns: 20000 },
    )
  })

  it("regression (seed -1160912086): a 1-byte RELEASE of PRIMARY cannot be re-encoded without CLIPBOARD_SELECTION", () => {
    const o = { selection: false, grabSerial: false }
    const d = decodeMessage(9, Uint8Array.of(1), o)
    expect(d).toEqual({ _tag: "Ok", value: { _tag: "ClipboardRelease", selection: 1 } })
    if (d._tag === "Ok") expect(encodeMessage(d.value, o)).toMatchObject({ _tag: "Invalid", reason: "Unrepresentable" })
  })
})
