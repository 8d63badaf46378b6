// StreamParser and MessageAssembler: typed errors checked on headers before any body, per-port resets, and properties
// over generated chunkings, interleavings and transport splits.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { type Invalid, type MessageHeader, MessageAssembler, StreamParser, type StreamSink } from "../../../src/protocol/index.ts"
import { build, chunk, concat, cut, messageBytes, scenarioArb } from "./wire-builder.ts"

const CAPS = { maxChunkSize: 65536, maxMessageSize: 65536 }
type Got = { port: number; type: number; payload: Uint8Array }

/** Runs pieces through an assembler; returns the messages (copied) and the error, if any. */
const assemble = (pieces: ReadonlyArray<Uint8Array>, a = new MessageAssembler(CAPS)) => {
  const got: Got[] = []
  for (const piece of pieces) {
    const n = a.push(piece, (port, h, body) => got.push({ port, type: h.type, payload: body.slice() }))
    if (a.error !== undefined) return { got, error: a.error, consumed: n }
    expect(n).toBe(piece.length)
  }
  return { got, error: undefined, consumed: undefined }
}

/** A sink that records the raw event sequence and rebuilds messages from it. */
const recordingSink = () => {
  const events: string[] = []
  const got: Got[] = []
  const partial = new Map<number, { h: MessageHeader; parts: Uint8Array[] }>()
  let error: Invalid | undefined
  const sink: StreamSink = {
    message: (port, h, body) => {
      events.push(`message ${port}`)
      got.push({ port, type: h.type, payload: body.slice() })
    },
    start: (port, h) => {
      events.push(`start ${port}`)
      partial.set(port, { h, parts: [] })
    },
    data: (port, bytes) => {
      events.push(`data ${port} ${bytes.length}`)
      partial.get(port)!.parts.push(bytes.slice())
    },
    end: (port) => {
      events.push(`end ${port}`)
      const p = partial.get(port)!
      got.push({ port, type: p.h.type, payload: concat(p.parts) })
      partial.delete(port)
    },
    error: (e) => {
      error = e
    },
  }
  return { sink, events, got, error: () => error }
}

const header = (type: number, size: number, protocol = 1) => {
  const b = new Uint8Array(20)
  const v = new DataView(b.buffer)
  v.setUint32(0, protocol, true)
  v.setUint32(4, type, true)
  v.setUint32(16, size, true)
  return b
}

describe("StreamParser errors are typed and raised on headers, before any body", () => {
  const parse = (bytes: Uint8Array, caps = CAPS) => {
    const p = new StreamParser(caps)
    const r = recordingSink()
    const consumed = p.push(bytes, r.sink)
    return { consumed, error: r.error(), events: r.events, parser: p }
  }
  it("UnknownPort", () => {
    expect(parse(chunk(3, messageBytes({ port: 3, type: 1, payload: new Uint8Array(13) })))).toMatchObject({ consumed: 0, error: { reason: "UnknownPort", at: 0 } })
    expect(parse(chunk(0, new Uint8Array(0))).error?.reason).toBe("UnknownPort")
  })
  it("ChunkTooLarge on the 8-byte chunk header alone", () => {
    const r = parse(Uint8Array.of(1, 0, 0, 0, 1, 0, 1, 0), { maxChunkSize: 2048, maxMessageSize: 1 << 20 })
    expect(r.error).toMatchObject({ reason: "ChunkTooLarge", at: 0 })
    expect(r.events).toEqual([])
  })
  it("MessageTooLarge and BadProtocol on the message header, before start", () => {
    const big = concat([Uint8Array.of(1, 0, 0, 0, 20, 0, 0, 0), header(4, 1 << 30)])
    const r = parse(big)
    expect(r.error).toMatchObject({ reason: "MessageTooLarge", at: 8 })
    expect(r.events).toEqual([])
    expect(parse(chunk(1, header(4, 0, 2))).error).toMatchObject({ reason: "BadProtocol", at: 8 })
  })
  it("ChunkPastMessageEnd: a single chunk longer than its message", () => {
    const r = parse(chunk(1, concat([header(1, 13), new Uint8Array(14)])))
    expect(r.error?.reason).toBe("ChunkPastMessageEnd")
  })
  it("ChunkPastMessageEnd: a continuation chunk longer than the rest of the message, refused on its header", () => {
    const m = messageBytes({ port: 1, type: 4, payload: new Uint8Array(100) })
    const first = chunk(1, m.subarray(0, 60))
    const bad = chunk(1, new Uint8Array(61)) // 60 bytes remain
    const r = parse(concat([first, chunk(2, messageBytes({ port: 2, type: 13, payload: new Uint8Array(0) })), bad]))
    expect(r.error).toMatchObject({ reason: "ChunkPastMessageEnd", at: first.length + 28 })
    expect(r.consumed).toBe(first.length + 28)
    expect(r.events).toEqual(["start 1", "data 1 40", "message 2"])
  })
  it("reports the error offset as a stream position across pushes, and never a negative count", () => {
    const p = new StreamParser(CAPS)
    const r = recordingSink()
    const ok = chunk(1, messageBytes({ port: 1, type: 13, payload: new Uint8Array(0) }))
    expect(p.push(concat([ok, Uint8Array.of(9, 0, 0)]), r.sink)).toBe(31)
    expect(p.push(Uint8Array.of(0, 0, 0, 0, 0), r.sink)).toBe(0)
    expect(r.error()).toMatchObject({ reason: "UnknownPort", at: 28 })
    expect(p.push(ok, r.sink)).toBe(0) // stopped until reset
    p.reset()
    expect(p.push(ok, r.sink)).toBe(28)
    expect(r.got.length).toBe(2)
  })
})

describe("resets", () => {
  it("resetPort(1) drops half a client message, as CLIENT_DISCONNECTED does in the agent (spec §11)", () => {
    const a = new MessageAssembler(CAPS)
    const half = chunk(1, messageBytes({ port: 1, type: 4, payload: new Uint8Array(100) }).subarray(0, 50))
    const got: number[] = []
    a.push(half, (_, h) => got.push(h.type))
    expect(a.atBoundary).toBe(false)
    a.resetPort(1)
    expect(a.atBoundary).toBe(true)
    a.push(chunk(1, messageBytes({ port: 1, type: 6, payload: new Uint8Array(8) })), (_, h) => got.push(h.type))
    expect(got).toEqual([6])
  })
  it("without the reset the next message would be swallowed as the missing body, then lose sync", () => {
    const a = new MessageAssembler(CAPS)
    a.push(chunk(1, messageBytes({ port: 1, type: 4, payload: new Uint8Array(100) }).subarray(0, 50)), () => {})
    const next = chunk(1, messageBytes({ port: 1, type: 6, payload: new Uint8Array(8) }))
    const r = assemble([next, next, next], a)
    expect(r.got).toEqual([])
    expect(r.error?.reason).toBe("ChunkPastMessageEnd")
  })
  it("reset() clears an error and every port", () => {
    const a = new MessageAssembler(CAPS)
    a.push(Uint8Array.of(7, 0, 0, 0, 0, 0, 0, 0), () => {})
    expect(a.error?.reason).toBe("UnknownPort")
    a.reset()
    expect(a.error).toBeUndefined()
    expect(assemble([chunk(2, messageBytes({ port: 2, type: 13, payload: new Uint8Array(0) }))], a).got).toHaveLength(1)
  })
})

describe("assembly properties", () => {
  it("yields the same messages however the stream is chunked, interleaved and split", () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const b = build(s)
        const want = b.expected.map(({ port, type, payload }) => ({ port, type, payload }))
        expect(assemble(b.pieces)).toEqual({ got: want, error: undefined, consumed: undefined })
        expect(assemble(b.pieces, new MessageAssembler({ ...CAPS, bodies: "owned" })).got).toEqual(want)
        expect(assemble(b.pieces, new MessageAssembler({ ...CAPS, retainBytes: 0 })).got).toEqual(want)
        const p = new StreamParser(CAPS)
        const r = recordingSink()
        for (const piece of b.pieces) expect(p.push(piece, r.sink)).toBe(piece.length)
        expect(r.got).toEqual(want)
        expect(p.atBoundary).toBe(true)
        expect(p.position).toBe(b.wire.length)
      }),
      { numRuns: 600 },
    )
  })

  it("every strict prefix yields exactly the messages complete in it, and no error", () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat(), (s, k) => {
        const b = build(s)
        if (b.wire.length === 0) return
        const n = k % b.wire.length
        const r = assemble(cut(b.wire.subarray(0, n), s.cuts))
        expect(r.error).toBeUndefined()
        expect(r.got.length).toBe(b.expected.filter((m) => m.end <= n).length)
      }),
      { numRuns: 600 },
    )
  })

  it("a single message's strict prefixes yield no message and leave the parser mid-message", () => {
    fc.assert(
      fc.property(scenarioArb.filter((s) => s.messages.length > 0), (s) => {
        const b = build({ ...s, messages: s.messages.slice(0, 1) })
        for (let n = 0; n < b.wire.length; n += Math.max(1, b.wire.length >> 6)) {
          const a = new MessageAssembler(CAPS)
          let delivered = 0
          a.push(b.wire.subarray(0, n), () => delivered++)
          expect(delivered).toBe(0)
          expect(a.error).toBeUndefined()
        }
        // Once the last chunk has started, the parser is mid-message until its last byte.
        if (b.wire.length > 1) {
          const a = new MessageAssembler(CAPS)
          a.push(b.wire.subarray(0, b.wire.length - 1), () => {})
          expect(a.atBoundary).toBe(false)
        }
      }),
      { numRuns: 200 },
    )
  })

  it("regression (seed 1833142744): empty chunks before a message leave the parser at a boundary", () => {
    const m = chunk(1, messageBytes({ port: 1, type: 13, payload: new Uint8Array(0) }))
    const wire = concat([chunk(1, new Uint8Array(0)), chunk(1, new Uint8Array(0)), m])
    const a = new MessageAssembler(CAPS)
    let delivered = 0
    a.push(wire.subarray(0, 16), () => delivered++)
    expect([delivered, a.atBoundary, a.error]).toEqual([0, true, undefined])
    a.push(wire.subarray(16), () => delivered++)
    expect([delivered, a.atBoundary]).toEqual([1, true])
  })

  it("random bytes never throw and never grow a buffer past its cap", () => {
    const caps = { maxChunkSize: 3000, maxMessageSize: 5000 }
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 12 }), fc.boolean(), (pieces, owned) => {
        const a = new MessageAssembler({ ...caps, bodies: owned ? "owned" : "borrowed" })
        for (const piece of pieces) {
          const n = a.push(piece, (_, h, body) => {
            expect(body.length).toBe(h.size)
            expect(h.size).toBeLessThanOrEqual(caps.maxMessageSize)
          })
          expect(n).toBeGreaterThanOrEqual(0)
          expect(n).toBeLessThanOrEqual(piece.length)
          expect(a.bufferedBytes).toBeLessThanOrEqual(2 * caps.maxMessageSize)
        }
      }),
      { numRuns: 3000 },
    )
  })
})
