// The bridge writes a client message named (origin, id) to the guest at most once: a resend after a relay restart is
// discarded but counted as written (so `wrote` passes it and the relay acknowledges it), across epochs, bounded memory.
import { describe, expect, it } from "vitest"
import { GuestAssembler, type MessageKey } from "../../../src/bridge/guest-assembler.ts"
import { WrittenKeys } from "../../../src/bridge/written-keys.ts"
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"

const limits = { maxMessageBytes: 1 << 20, bufferBytes: 4 << 20, maxChunkData: 2048 }

/** An assembler whose batches are written at once; returns what reached the "chardev" and the duplicates seen. */
const rig = (keys: WrittenKeys) => {
  const duplicates: Array<MessageKey> = []
  const a = new GuestAssembler(limits, { discarded: () => {}, duplicate: (_p, key) => duplicates.push(key) }, keys)
  const out: Array<Uint8Array> = []
  const drain = (): void => {
    for (let b = a.nextBatch(32 * 1024); b !== undefined; b = a.nextBatch(32 * 1024)) {
      out.push(b.bytes)
      a.written(b)
    }
  }
  return { a, out, duplicates, drain }
}

const msg = (fill: number, size = 3000): Uint8Array => encodeChunkedMessage(1, 11, new Uint8Array(size).fill(fill))

describe("written keys", () => {
  it("writes a keyed message once; its resend is settled without a byte written, and wrote passes it", () => {
    const keys = new WrittenKeys()
    const { a, out, duplicates, drain } = rig(keys)
    const m = msg(1)
    a.receive(0, 1, m, true, { origin: "o", id: 5 })
    drain()
    expect(a.wrotePos).toBe(m.length)
    // The relay restarted and resends it (same epoch, its positions continue at hello.wrote).
    a.receive(m.length, 1, m, true, { origin: "o", id: 5 })
    drain()
    expect(out.reduce((n, b) => n + b.length, 0)).toBe(m.length)
    expect(duplicates).toEqual([{ origin: "o", id: 5 }])
    expect(a.wrotePos).toBe(2 * m.length)
    expect(a.held).toBe(0)
  })

  it("suppresses a repeat queued behind its original (checked when it comes to be written)", () => {
    const { a, out, duplicates, drain } = rig(new WrittenKeys())
    const m = msg(2)
    a.receive(0, 1, m, true, { origin: "o", id: 1 })
    a.receive(m.length, 1, m, true, { origin: "o", id: 1 })
    drain()
    expect(out.reduce((n, b) => n + b.length, 0)).toBe(m.length)
    expect(duplicates).toHaveLength(1)
  })

  it("writes a repeat whose original was dropped unwritten (port closed): at most once means once when it can", () => {
    const { a, out, duplicates, drain } = rig(new WrittenKeys())
    const m = msg(3)
    a.receive(0, 1, m, true, { origin: "o", id: 1 })
    a.discardAll("port-closed", "test")
    a.receive(m.length, 1, m, true, { origin: "o", id: 1 })
    drain()
    expect(out.reduce((n, b) => n + b.length, 0)).toBe(m.length)
    expect(duplicates).toHaveLength(0)
  })

  it("remembers across epochs (a new assembler sharing the keys), and tells origins and unkeyed messages apart", () => {
    const keys = new WrittenKeys()
    const first = rig(keys)
    first.a.receive(0, 1, msg(4), true, { origin: "o", id: 9 })
    first.drain()
    const next = rig(keys)
    next.a.receive(0, 1, msg(4), true, { origin: "o", id: 9 })
    next.a.receive(msg(4).length, 1, msg(4), true, { origin: "p", id: 9 })
    next.a.receive(2 * msg(4).length, 1, msg(4), true)
    next.a.receive(3 * msg(4).length, 1, msg(4), true)
    next.drain()
    expect(next.duplicates).toEqual([{ origin: "o", id: 9 }])
    expect(next.out.reduce((n, b) => n + b.length, 0)).toBe(3 * msg(4).length)
  })

  it("stays bounded: old ids fold into a floor (still counted written), the least recently written origin goes", () => {
    const keys = new WrittenKeys(8, 2)
    for (let id = 1; id <= 20; id++) keys.add("a", id)
    expect(keys.has("a", 1)).toBe(true)
    expect(keys.has("a", 20)).toBe(true)
    expect(keys.has("a", 21)).toBe(false)
    keys.add("b", 1)
    keys.add("a", 22)
    keys.add("c", 1)
    expect(keys.size).toBe(2)
    expect(keys.has("b", 1)).toBe(false)
    expect(keys.has("a", 22)).toBe(true)
    expect(keys.has("c", 1)).toBe(true)
  })
})
