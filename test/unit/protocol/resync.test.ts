// findResync after garbage, and a consumer loop (assemble, resync on error) that survives mutated streams.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { MessageAssembler, type MessageHeader, findResync } from "../../../src/protocol/index.ts"
import { build, chunk, concat, cut, messageBytes, scenarioArb } from "./wire-builder.ts"

const CAPS = { maxChunkSize: 8192, maxMessageSize: 8192 }
const announce = chunk(1, messageBytes({ port: 1, type: 6, payload: Uint8Array.of(1, 0, 0, 0, 0xe7, 0x8d, 3, 0) }))

describe("findResync", () => {
  it("finds a chunk start after garbage", () => {
    expect(findResync(concat([new Uint8Array(5).fill(0xff), announce]), 0, CAPS)).toEqual({ _tag: "Ok", value: 5, next: 5 })
    expect(findResync(concat([new Uint8Array(40), announce]), 0, CAPS)).toMatchObject({ _tag: "Ok", value: 40 })
    expect(findResync(announce, 1, CAPS)).toMatchObject({ _tag: "Need", from: announce.length })
  })
  it("asks for more bytes, keeping the earliest candidate that could still be a header", () => {
    expect(findResync(concat([Uint8Array.of(9, 9), announce.subarray(0, 10)]), 0, CAPS)).toEqual({ _tag: "Need", bytes: 18, from: 2 })
    expect(findResync(Uint8Array.of(7, 7, 2, 0), 0, CAPS)).toEqual({ _tag: "Need", bytes: 26, from: 2 })
    expect(findResync(Uint8Array.of(7, 7, 3), 0, CAPS)).toEqual({ _tag: "Need", bytes: 28, from: 3 })
  })
  it("rejects implausible headers: port, chunk size, protocol, type, size consistency and caps", () => {
    const variants: Array<[string, (b: DataView) => void]> = [
      ["port 3", (v) => v.setUint32(0, 3, true)],
      ["chunk < 20", (v) => v.setUint32(4, 19, true)],
      ["chunk over cap", (v) => v.setUint32(4, CAPS.maxChunkSize + 1, true)],
      ["protocol 2", (v) => v.setUint32(8, 2, true)],
      ["type 0", (v) => v.setUint32(12, 0, true)],
      ["type 17", (v) => v.setUint32(12, 17, true)],
      ["message shorter than its chunk", (v) => v.setUint32(24, 7, true)],
      ["message over cap", (v) => v.setUint32(24, CAPS.maxMessageSize + 1, true)],
    ]
    for (const [why, edit] of variants) {
      const b = announce.slice()
      edit(new DataView(b.buffer))
      expect(findResync(b, 0, CAPS), why).toMatchObject({ _tag: "Need" })
    }
    const multi = announce.slice()
    new DataView(multi.buffer).setUint32(24, 100, true) // a first chunk of a longer message is plausible
    expect(findResync(multi, 0, CAPS)).toMatchObject({ _tag: "Ok", value: 0 })
  })
  it("finds the real start at or before the end of any garbage (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (garbage) => {
        const r = findResync(concat([garbage, announce]), 0, CAPS)
        expect(r._tag).toBe("Ok")
        if (r._tag === "Ok") expect(r.value).toBeLessThanOrEqual(garbage.length)
      }),
      { numRuns: 3000 },
    )
  })
})

/**
 * Assemble with resynchronisation: on an error, hunt from the offending chunk for the next plausible header and
 * restart there. Every plausible header passes the parser's own header checks, so a restart never fails in place.
 */
const robustConsume = (pieces: ReadonlyArray<Uint8Array>, onMessage: (port: number, h: MessageHeader, body: Uint8Array) => void) => {
  const a = new MessageAssembler(CAPS)
  let errors = 0
  let hunting = false
  let held = new Uint8Array(0)
  for (const piece of pieces) {
    let buf = hunting ? concat([held, piece]) : piece
    let restartedHere = false
    for (;;) {
      if (hunting) {
        const r = findResync(buf, 0, CAPS)
        if (r._tag === "Need") {
          held = buf.slice(r.from)
          expect(held.length).toBeLessThan(28)
          break
        }
        hunting = false
        a.reset()
        buf = buf.subarray(r.value)
        restartedHere = true
      }
      const n = a.push(buf, onMessage)
      if (a.error === undefined) break
      if (restartedHere && n === 0) throw new Error(`a resynchronised header failed in place: ${a.error.reason}`)
      errors++
      hunting = true
      restartedHere = false
      buf = buf.subarray(n)
    }
  }
  return { errors, buffered: a.bufferedBytes }
}

describe("a consumer that resynchronises", () => {
  it("survives mutated streams: no throw, progress, bounded buffers, only well-formed deliveries", () => {
    fc.assert(
      fc.property(
        scenarioArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom("set", "insert", "delete")), { minLength: 1, maxLength: 6 }),
        (s, mutations) => {
          const b = build(s)
          const bytes = Array.from(b.wire)
          for (const [pos, value, op] of mutations) {
            const at = bytes.length === 0 ? 0 : pos % bytes.length
            if (op === "set" && bytes.length > 0) bytes[at] = value
            else if (op === "insert") bytes.splice(at, 0, value)
            else bytes.splice(at, 1)
          }
          const wire = Uint8Array.from(bytes)
          const r = robustConsume(cut(wire, s.cuts), (_, h, body) => {
            expect(h.protocol).toBe(1)
            expect(body.length).toBe(h.size)
            expect(h.size).toBeLessThanOrEqual(CAPS.maxMessageSize)
          })
          expect(r.buffered).toBeLessThanOrEqual(2 * CAPS.maxMessageSize)
        },
      ),
      { numRuns: 1000 },
    )
  })
})
