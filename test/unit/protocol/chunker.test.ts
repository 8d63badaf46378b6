// MessageChunker / encodeChunkedMessage: output parses back, chunks ≤ 2048 with the whole header in the first, and
// streaming in pieces gives the same bytes as chunking at once.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { MessageAssembler, MessageChunker, VD_AGENT_MAX_DATA_SIZE, chunkedSize, encodeChunkedMessage } from "../../../src/protocol/index.ts"
import { concat, cut } from "./wire-builder.ts"

const chunkSizes = (wire: Uint8Array): number[] => {
  const v = new DataView(wire.buffer, wire.byteOffset, wire.length)
  const out: number[] = []
  for (let at = 0; at < wire.length; ) {
    const size = v.getUint32(at + 4, true)
    out.push(size)
    at += 8 + size
  }
  return out
}

describe("chunker", () => {
  it("the first chunk holds the header and 2028 payload bytes, later ones 2048", () => {
    const wire = encodeChunkedMessage(1, 4, new Uint8Array(5000))
    expect(chunkSizes(wire)).toEqual([2048, 2048, 924])
    expect(wire.length).toBe(chunkedSize(5000))
    expect(chunkSizes(encodeChunkedMessage(2, 13, new Uint8Array(0)))).toEqual([20])
    expect(chunkSizes(encodeChunkedMessage(1, 4, new Uint8Array(2028)))).toEqual([2048])
    expect(chunkSizes(encodeChunkedMessage(1, 4, new Uint8Array(2029)))).toEqual([2048, 1])
  })

  it("refuses a chunk size that cannot hold the message header", () => {
    expect(() => new MessageChunker(1, 4, 10, 19)).toThrow(RangeError)
  })

  it("output parses back, every chunk ≤ the limit, and pieces of any size give the same bytes", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2),
        fc.integer({ min: 1, max: 16 }),
        fc.uint8Array({ maxLength: 9000 }),
        fc.constantFrom(VD_AGENT_MAX_DATA_SIZE, 20, 21, 1024, 4096),
        fc.array(fc.nat(), { maxLength: 12 }),
        (port, type, payload, maxData, cuts) => {
          const wire = encodeChunkedMessage(port, type, payload, maxData)
          expect(wire.length).toBe(chunkedSize(payload.length, maxData))
          for (const s of chunkSizes(wire)) expect(s).toBeLessThanOrEqual(maxData)
          const got: Array<{ port: number; type: number; body: Uint8Array }> = []
          new MessageAssembler({ maxChunkSize: maxData, maxMessageSize: payload.length }).push(wire, (p, h, body) =>
            got.push({ port: p, type: h.type, body: body.slice() }),
          )
          expect(got).toEqual([{ port, type, body: payload }])

          const c = new MessageChunker(port, type, payload.length, maxData)
          const out: Uint8Array[] = []
          const pieces = payload.length === 0 ? [payload] : cut(payload, cuts)
          for (const piece of pieces) {
            const expectedLength = c.outputSizeFor(piece.length)
            const o = c.push(piece)
            expect(o.length).toBe(expectedLength)
            out.push(o)
          }
          expect(c.done).toBe(true)
          expect(c.remaining).toBe(0)
          expect(concat(out)).toEqual(wire)
        },
      ),
      { numRuns: 500 },
    )
  })

  it("refuses more payload than announced", () => {
    const c = new MessageChunker(1, 4, 3)
    c.push(new Uint8Array(2))
    expect(() => c.push(new Uint8Array(2))).toThrow(RangeError)
  })
})
