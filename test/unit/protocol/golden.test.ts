// Every golden vector in test/golden/*.hex: decode to the expected messages, re-encode to the same bytes.
import { describe, expect, it } from "vitest"
import { type GoldenVector, loadGoldenVectors } from "../../golden/load.ts"
import {
  CHUNK_HEADER_SIZE,
  MESSAGE_HEADER_SIZE,
  MessageAssembler,
  decodeMessage,
  encodeChunkHeader,
  encodeChunkedMessage,
  encodeMessage,
  encodeMessageHeader,
  messageTypeOf,
} from "../../../src/protocol/index.ts"
import { concat } from "./wire-builder.ts"

const vectors = loadGoldenVectors()

const frame = (v: GoldenVector, port: number, type: number, payload: Uint8Array): Uint8Array => {
  if (v.direction === "host->agent") return encodeChunkedMessage(port, type, payload)
  // The agent writes each message as one chunk of any size (spec §11).
  const out = new Uint8Array(CHUNK_HEADER_SIZE + MESSAGE_HEADER_SIZE + payload.length)
  encodeChunkHeader({ port, size: MESSAGE_HEADER_SIZE + payload.length }, out, 0)
  encodeMessageHeader({ type, size: payload.length }, out, CHUNK_HEADER_SIZE)
  out.set(payload, CHUNK_HEADER_SIZE + MESSAGE_HEADER_SIZE)
  return out
}

it("the golden directory holds vectors", () => {
  expect(vectors.length).toBeGreaterThanOrEqual(8)
})

describe.each(vectors.map((v) => [v.name, v] as const))("%s", (_, v) => {
  it("is well-formed: every byte line commented", () => {
    expect(v.source.length).toBeGreaterThan(0)
    expect(v.uncommentedLines).toEqual([])
  })

  it("decodes to the expected messages and re-encodes to the same bytes", () => {
    const a = new MessageAssembler({ maxChunkSize: 0xffffffff, maxMessageSize: 0xffffffff })
    const got: Array<{ port: number; type: number; payload: Uint8Array }> = []
    expect(a.push(v.bytes, (port, h, body) => got.push({ port, type: h.type, payload: body.slice() }))).toBe(v.bytes.length)
    expect(a.error).toBeUndefined()
    expect(a.atBoundary).toBe(true)
    expect(got.length).toBe(v.expect.length)

    const frames: Uint8Array[] = []
    got.forEach((g, i) => {
      const want = v.expect[i]!
      expect(g.port).toBe(want.port)
      expect(g.type).toBe(messageTypeOf(want.message))
      expect(decodeMessage(g.type, g.payload, v.layout)).toEqual({ _tag: "Ok", value: want.message })
      if (!v.reencode) return void frames.push(frame(v, want.port, g.type, g.payload))
      const payload = encodeMessage(want.message, v.layout)
      expect(payload).toEqual({ _tag: "Ok", value: g.payload })
      if (payload._tag === "Ok") frames.push(frame(v, want.port, g.type, payload.value))
    })
    expect(concat(frames)).toEqual(v.bytes)
  })
})
