// Properties of the bridge's pure parts: the agent tail returns exactly the bytes at any retained position, and the
// guest assembler writes every message whole per port, whatever the frame splits and the port interleaving.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { AgentTail } from "../../../src/bridge/agent-tail.ts"
import { GuestAssembler } from "../../../src/bridge/guest-assembler.ts"
import { checkChunking } from "../../../src/bridge/part-cursor.ts"
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"

describe("AgentTail", () => {
  it("serves the exact stream bytes from any retained position after any appends and releases", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(400)), { maxLength: 40 }), (ops) => {
        const tail = new AgentTail()
        const all: Array<number> = []
        for (const op of ops) {
          if (typeof op === "number") tail.release(Math.min(tail.end, tail.from + op))
          else {
            tail.append(op.slice())
            all.push(...op)
          }
          for (let p = tail.from; p < tail.end; ) {
            const s = tail.slice(p, 97)
            expect(s.length).toBeGreaterThan(0)
            expect([...s]).toEqual(all.slice(p, p + s.length))
            p += s.length
          }
        }
        expect(tail.retained).toBe(tail.end - tail.from)
      }),
    )
  })
})

const arbMessage = fc.record({ port: fc.constantFrom(1, 2), size: fc.nat(6000), seed: fc.nat(255) })

describe("GuestAssembler", () => {
  it("writes each port's messages whole and in order, for any frame split, interleaving and batch size", () => {
    fc.assert(
      fc.property(fc.array(arbMessage, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 20_000 }), fc.array(fc.boolean(), { maxLength: 64 }), (msgs, piece, batch, order) => {
        const wires = msgs.map((m) => ({ port: m.port, wire: encodeChunkedMessage(m.port, 4, new Uint8Array(m.size).fill(m.seed)) }))
        // Frames of the two ports interleave (the relay mixes ports); within a port, messages stay in order.
        const queues = new Map<number, Array<{ data: Uint8Array; end: boolean }>>([[1, []], [2, []]])
        for (const { port, wire } of wires) {
          for (let at = 0; at < wire.length; at += piece) queues.get(port)!.push({ data: wire.subarray(at, at + piece), end: at + piece >= wire.length })
        }
        const g = new GuestAssembler({ maxMessageBytes: 1 << 20, bufferBytes: 1 << 22, maxChunkData: 2048 }, { discarded: () => expect.fail("nothing is discarded") })
        let pos = 0
        let i = 0
        const written = new Map<number, Array<Uint8Array>>([[1, []], [2, []]])
        const drain = (): void => {
          for (let b = g.nextBatch(batch); b !== undefined; b = g.nextBatch(batch)) {
            written.get(b.port)!.push(b.bytes)
            g.written(b)
          }
        }
        while (queues.get(1)!.length + queues.get(2)!.length > 0) {
          const prefer = order[i++ % Math.max(1, order.length)] ? 1 : 2
          const port = queues.get(prefer)!.length > 0 ? prefer : prefer === 1 ? 2 : 1
          const f = queues.get(port)!.shift()!
          g.receive(pos, port, f.data, f.end)
          pos += f.data.length
          if (i % 3 === 0) drain()
        }
        drain()
        for (const port of [1, 2]) {
          const expected = Buffer.concat(wires.filter((w) => w.port === port).map((w) => w.wire))
          expect(Buffer.concat(written.get(port)!).equals(expected)).toBe(true)
        }
        expect(g.wrotePos).toBe(pos)
        expect(g.held).toBe(0)
      }),
    )
  })

  it("accepts only well-formed chunking", () => {
    const good = encodeChunkedMessage(1, 4, new Uint8Array(5000))
    expect(checkChunking([good.subarray(0, 3), good.subarray(3)], 1, 2048)).toBeUndefined()
    expect(checkChunking([good], 2, 2048)).toMatch(/port 1 inside a port 2/)
    expect(checkChunking([good.subarray(0, good.length - 1)], 1, 2048)).toMatch(/runs past the end/)
    expect(checkChunking([encodeChunkedMessage(1, 4, new Uint8Array(5000), 4096)], 1, 2048)).toMatch(/outside 1\.\.2048/)
    const twoInOne = Buffer.from(good)
    twoInOne.writeUInt32LE(100, 8 + 16) // the header now claims a shorter message than its chunks carry
    expect(checkChunking([twoInOne], 1, 2048)).toMatch(/runs past its message end/)
  })
})
