// Property tests of both links' codecs: every frame round-trips; random and mutated bytes never throw and always yield
// either a valid frame (that re-encodes) or a typed error.
import fc from "fast-check"
import { Packr } from "msgpackr"
import { describe, expect, it } from "vitest"
import { decodeBridgeToRelay, decodeRelayToBridge, encodeBridgeToRelay, encodeRelayToBridge } from "../../../src/link/bridge-codec.ts"
import { decodeClientToRelay, decodeRelayToClient, encodeClientToRelay, encodeRelayToClient } from "../../../src/link/client-codec.ts"
import type { LinkDecoded } from "../../../src/link/codec.ts"
import { bridgeToRelayArb, clientToRelayArb, relayToBridgeArb, relayToClientArb } from "./arbitraries.ts"

interface Codec {
  readonly name: string
  readonly arb: fc.Arbitrary<object>
  readonly encode: (f: never) => Uint8Array
  readonly decode: (b: Uint8Array) => LinkDecoded<object>
}
const codecs: ReadonlyArray<Codec> = [
  { name: "client→relay", arb: clientToRelayArb, encode: encodeClientToRelay, decode: decodeClientToRelay },
  { name: "relay→client", arb: relayToClientArb, encode: encodeRelayToClient, decode: decodeRelayToClient },
  { name: "bridge→relay", arb: bridgeToRelayArb, encode: encodeBridgeToRelay, decode: decodeBridgeToRelay },
  { name: "relay→bridge", arb: relayToBridgeArb, encode: encodeRelayToBridge, decode: decodeRelayToBridge },
]

/** Mutations of a valid encoding: byte flips, truncation, insertion, splices of random bytes. */
const mutated = (arb: fc.Arbitrary<object>, encode: (f: never) => Uint8Array) =>
  fc
    .tuple(
      arb.map((f) => encode(f as never)),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom("flip", "cut", "insert", "delete")), { minLength: 1, maxLength: 4 }),
    )
    .map(([bytes, edits]) => {
      let b = Array.from(bytes)
      for (const [at, v, op] of edits) {
        const i = b.length === 0 ? 0 : at % b.length
        if (op === "flip") b[i] = v
        else if (op === "cut") b = b.slice(0, i)
        else if (op === "insert") b.splice(i, 0, v)
        else b.splice(i, 1)
      }
      return Uint8Array.from(b)
    })

describe.each(codecs)("$name", ({ arb, encode, decode }) => {
  it("round-trips every frame", () => {
    fc.assert(
      fc.property(arb, (frame) => {
        const bytes = encode(frame as never)
        expect(bytes.constructor).toBe(Uint8Array)
        const back = decode(bytes)
        expect(back).toEqual({ _tag: "Ok", value: frame })
      }),
      { numRuns: 2000 },
    )
  })

  it("decodes bulk bytes to plain Uint8Array views, never Node Buffers", () => {
    fc.assert(
      fc.property(arb, (frame) => {
        const back = decode(encode(frame as never))
        if (back._tag !== "Ok") return
        for (const v of Object.values(back.value)) if (v instanceof Uint8Array) expect(v.constructor).toBe(Uint8Array)
      }),
    )
  })

  it("never throws on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const r = decode(bytes)
        expect(["Ok", "Invalid"]).toContain(r._tag)
      }),
      { numRuns: 3000 },
    )
  })

  it("never throws on random msgpack maps, with or without a known frame type", () => {
    const packr = new Packr({ useRecords: false })
    const value = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.uint8Array({ maxLength: 16 }), fc.float(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }))
    const frame = fc.tuple(fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 8 }), fc.constantFrom("hello", "msg", "data", "welcome", "write", "x"))
    fc.assert(
      fc.property(frame, ([fields, t]) => {
        const r = decode(packr.pack({ t, ...fields }))
        expect(["Ok", "Invalid"]).toContain(r._tag)
      }),
      { numRuns: 3000 },
    )
  })

  it("never throws on mutated frames, and whatever decodes re-encodes to an equal frame", () => {
    fc.assert(
      fc.property(mutated(arb, encode), (bytes) => {
        const r = decode(bytes)
        if (r._tag === "Invalid") {
          expect(typeof r.reason).toBe("string")
          return
        }
        expect(decode(encode(r.value as never))).toEqual(r)
      }),
      { numRuns: 3000 },
    )
  })
})
