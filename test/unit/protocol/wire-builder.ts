// Test helper: lay messages out as VDIChunk streams with arbitrary chunking and port interleaving, and cut the
// result into transport pieces, remembering which messages are complete after which byte.
import fc from "fast-check"
import { concatBytes, encodeChunkHeader, encodeMessageHeader } from "../../../src/protocol/index.ts"
import { type RawMessage, rawMessageArb } from "./arbitraries.ts"

/** The tests' name for src/protocol's concatBytes. */
export const concat = concatBytes

export const messageBytes = (m: RawMessage): Uint8Array => {
  const out = new Uint8Array(20 + m.payload.length)
  encodeMessageHeader({ type: m.type, size: m.payload.length }, out, 0)
  out.set(m.payload, 20)
  return out
}

export const chunk = (port: number, data: Uint8Array): Uint8Array => concat([encodeChunkHeader({ port, size: data.length }), data])

/** Splits a message's bytes into chunk payloads, cycling through `sizes` (0 = an empty chunk). */
const chunkSizes = (total: number, sizes: ReadonlyArray<number>): number[] => {
  const out: number[] = []
  let left = total
  let idle = 0
  for (let i = 0; left > 0; i++) {
    const s = Math.min(sizes[i % sizes.length]!, left)
    idle = s === 0 ? idle + 1 : 0
    const take = idle >= sizes.length ? left : s
    out.push(take)
    left -= take
  }
  return out.length === 0 ? [0] : out
}

export interface Scenario {
  readonly messages: ReadonlyArray<{ readonly m: RawMessage; readonly sizes: ReadonlyArray<number> }>
  readonly order: ReadonlyArray<boolean>
  readonly cuts: ReadonlyArray<number>
}

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  messages: fc.array(fc.record({ m: rawMessageArb, sizes: fc.array(fc.integer({ min: 0, max: 2100 }), { minLength: 1, maxLength: 4 }) }), { maxLength: 8 }),
  order: fc.array(fc.boolean(), { maxLength: 64 }),
  cuts: fc.array(fc.nat(), { maxLength: 24 }),
})

export interface Built {
  readonly wire: Uint8Array
  /** Messages in the order their last chunk appears, with the stream offset just past that chunk. */
  readonly expected: ReadonlyArray<RawMessage & { readonly end: number }>
  readonly pieces: ReadonlyArray<Uint8Array>
}

export const build = (s: Scenario): Built => {
  type Q = Array<{ bytes: Uint8Array; last: RawMessage | undefined }>
  const queues: Record<number, Q> = { 1: [], 2: [] }
  for (const { m, sizes } of s.messages) {
    const bytes = messageBytes(m)
    let at = 0
    const plan = chunkSizes(bytes.length, sizes)
    plan.forEach((n, i) => {
      queues[m.port]!.push({ bytes: chunk(m.port, bytes.subarray(at, at + n)), last: i === plan.length - 1 ? m : undefined })
      at += n
    })
  }
  const parts: Uint8Array[] = []
  const expected: Array<RawMessage & { end: number }> = []
  let offset = 0
  for (let i = 0; queues[1]!.length + queues[2]!.length > 0; i++) {
    const prefer = (s.order[i % Math.max(1, s.order.length)] ?? true) ? 1 : 2
    const q = queues[prefer]!.length > 0 ? queues[prefer]! : queues[prefer === 1 ? 2 : 1]!
    const c = q.shift()!
    parts.push(c.bytes)
    offset += c.bytes.length
    if (c.last !== undefined) expected.push({ ...c.last, end: offset })
  }
  const wire = concat(parts)
  return { wire, expected, pieces: cut(wire, s.cuts) }
}

export const cut = (wire: Uint8Array, cuts: ReadonlyArray<number>): Uint8Array[] => {
  const points = [...new Set(cuts.map((c) => (wire.length === 0 ? 0 : c % wire.length)))].sort((a, b) => a - b)
  // Odd pieces are views at an offset inside a larger buffer, so byteOffset handling is exercised too.
  const padded = new Uint8Array(wire.length + 3)
  padded.set(wire, 3)
  const out: Uint8Array[] = []
  let prev = 0
  for (const [i, p] of [...points, wire.length].entries()) {
    out.push(i % 2 === 0 ? wire.slice(prev, p) : padded.subarray(3 + prev, 3 + p))
    prev = p
  }
  return out
}
