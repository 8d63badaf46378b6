// Properties of the two halves of the client link without sockets: whatever the fragmentation, interleaving, aborts
// and credit grants, the SDK surfaces only whole messages and never sends beyond its credit.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Inbox } from "../../../src/client/inbox.ts"
import { Outbox } from "../../../src/client/outbox.ts"
import type { ClientToRelay } from "../../../src/link/types.ts"

const payloadArb = fc.uint8Array({ minLength: 0, maxLength: 300 })
/** A message, the fragment sizes it is cut into, and whether the relay aborts it after its first fragment. */
const agentMsgArb = fc.record({ type: fc.integer({ min: 1, max: 16 }), payload: payloadArb, cuts: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 }), aborted: fc.boolean() })

type Fragment = Parameters<Inbox["push"]>[0]

const fragmentsOf = (seq: number, m: { type: number; payload: Uint8Array; cuts: number[]; aborted: boolean }): Fragment[] => {
  const out: Fragment[] = []
  let at = 0
  const cuts = [...m.cuts]
  do {
    const n = Math.min(cuts.shift() ?? m.payload.length, m.payload.length - at)
    const data = m.payload.slice(at, at + n)
    at += n
    const end = at === m.payload.length
    out.push(out.length === 0 ? { t: "msg", seq, type: m.type, size: m.payload.length, data, end } : { t: "more", seq, data, end })
  } while (at < m.payload.length)
  if (m.aborted && out.length > 1) return [out[0]!, { t: "abort", seq, reason: "dropped-by-disconnect" }]
  return out
}

describe("Inbox", () => {
  it("delivers exactly the messages not aborted, whole, however they are cut and interleaved", () => {
    fc.assert(
      fc.property(fc.array(agentMsgArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 100 }), (msgs, picks) => {
        const queues = msgs.map((m, i) => fragmentsOf(i + 1, m))
        const granted: number[] = []
        const inbox = new Inbox(1 << 20, 256, (n) => granted.push(n))
        inbox.linkOpened()
        const got = new Map<number, Uint8Array>()
        // Interleave the per-message fragment queues at random, keeping each queue's own order; messages start in seq
        // order (the relay numbers them as the agent's stream starts them).
        let p = 0, started = 0
        while (queues.some((q) => q.length > 0)) {
          const live = queues.filter((q, i) => q.length > 0 && i <= started)
          if (live.length === 0) {
            started++
            continue
          }
          const q = live[(picks[p++] ?? 0) % live.length]!
          if (queues.indexOf(q) === started) started++
          const r = inbox.push(q.shift()!)
          if (r?._tag === "Message") {
            expect(got.has(r.message.seq)).toBe(false)
            got.set(r.message.seq, r.message.data)
          } else expect(r === undefined || r._tag === "Aborted").toBe(true)
        }
        msgs.forEach((m, i) => {
          const whole = !m.aborted || fragmentsOf(i + 1, m).length === 1
          expect(got.get(i + 1)).toEqual(whole ? m.payload : undefined)
        })
        // Credit returned never exceeds what was consumed plus the initial window.
        const consumed = queues.length === 0 ? 0 : msgs.reduce((n, m, i) => n + fragmentsOf(i + 1, m).reduce((k, f) => k + ("data" in f ? f.data.length : 0), 0), 0)
        expect(granted.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(256 + consumed)
      }),
    )
  })

  it("after a resume, replays of messages already delivered are consumed but not delivered twice", () => {
    fc.assert(
      fc.property(fc.array(agentMsgArb.map((m) => ({ ...m, aborted: false })), { minLength: 1, maxLength: 8 }), fc.nat(), (msgs, cut) => {
        const inbox = new Inbox(1 << 20, 1 << 20, () => {})
        inbox.linkOpened()
        const all = msgs.flatMap((m, i) => fragmentsOf(i + 1, m))
        const before = all.slice(0, cut % (all.length + 1))
        const seen: number[] = []
        for (const f of before) {
          const r = inbox.push(f)
          if (r?._tag === "Message") seen.push(r.message.seq)
        }
        inbox.linkOpened() // the link dropped; the relay replays everything after lastSeq, and maybe more
        const from = Math.max(0, inbox.lastSeq - 1)
        for (const f of msgs.flatMap((m, i) => (i + 1 > from ? fragmentsOf(i + 1, m) : []))) {
          const r = inbox.push(f)
          if (r?._tag === "Message") seen.push(r.message.seq)
        }
        expect(seen).toEqual(msgs.map((_, i) => i + 1))
      }),
    )
  })

  it("drops a message over its size cap, reports it, and keeps going", () => {
    const inbox = new Inbox(10, 1000, () => {})
    inbox.linkOpened()
    expect(inbox.push({ t: "msg", seq: 1, type: 4, size: 20, data: new Uint8Array(5), end: false })?._tag).toBe("Dropped")
    expect(inbox.push({ t: "more", seq: 1, data: new Uint8Array(15), end: true })).toBeUndefined()
    expect(inbox.push({ t: "msg", seq: 2, type: 4, size: 3, data: new Uint8Array(3), end: true })?._tag).toBe("Message")
  })

  it("calls a fragment that overflows its message a protocol error", () => {
    const inbox = new Inbox(100, 1000, () => {})
    inbox.linkOpened()
    inbox.push({ t: "msg", seq: 1, type: 4, size: 4, data: new Uint8Array(2), end: false })
    expect(inbox.push({ t: "more", seq: 1, data: new Uint8Array(3), end: true })?._tag).toBe("Protocol")
  })
})

describe("Outbox", () => {
  /** `heads[i]`, when given, sends payload i as its first bytes (modulo its length) and the rest in a body of its own. */
  const run = (sizes: number[], grants: number[], maxFragment: number, heads: number[] = []) => {
    const frames: ClientToRelay[] = []
    const box = new Outbox({ maxFragment, send: (f) => frames.push(f) })
    const payloads = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, k) => (i * 31 + k) & 0xff))
    const bodies = payloads.map((p, i) => {
      const h = heads[i]
      if (h === undefined) return void box.enqueue(7, p).catch(() => {})
      const at = h % (p.length + 1)
      const parts = { head: p.slice(0, at), body: p.slice(at) }
      void box.enqueue(7, parts).catch(() => {})
      return { at, body: parts.body }
    })
    return { frames, box, payloads, bodies }
  }

  it("never sends more message data than its credit, and every message arrives whole and in order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 128 }),
        fc.array(fc.nat({ max: 600 }), { maxLength: 10 }),
        (sizes, grants, maxFragment, heads) => {
          const { frames, box, payloads, bodies } = run(sizes, grants, maxFragment, heads)
          let credit = 0, spent = 0
          box.linkOpened(0)
          for (const g of grants) {
            credit += g
            box.addCredit(g)
          }
          box.addCredit(1e9)
          credit += 1e9
          const parts = new Map<number, number[]>()
          const order: number[] = []
          for (const f of frames) {
            if (f.t !== "msg" && f.t !== "more") continue
            expect(f.data.length).toBeLessThanOrEqual(maxFragment)
            spent += f.data.length
            expect(spent).toBeLessThanOrEqual(credit)
            if (f.t === "msg") (parts.set(f.id, []), order.push(f.id))
            // A fragment wholly in a body is a view of the caller's bytes, never a copy.
            const b = bodies[f.id - 1]
            if (b !== undefined && parts.get(f.id)!.length >= b.at && f.data.length > 0) expect(f.data.buffer).toBe(b.body.buffer)
            parts.get(f.id)!.push(...f.data)
          }
          expect(order).toEqual(payloads.map((_, i) => i + 1))
          payloads.forEach((p, i) => expect(Uint8Array.from(parts.get(i + 1)!)).toEqual(p))
        },
      ),
    )
  })

  it("keeps a message until its ack and sends it again whole on a resend notice or a new link", async () => {
    const frames: ClientToRelay[] = []
    const box = new Outbox({ maxFragment: 4, send: (f) => frames.push(f) })
    box.linkOpened(100)
    const acked = box.enqueue(3, Uint8Array.of(1, 2, 3, 4, 5, 6))
    expect(frames.map((f) => f.t)).toEqual(["msg", "more"])
    box.notice(1, "resend", "relay restarted")
    expect(frames.map((f) => f.t)).toEqual(["msg", "more", "msg", "more"])
    box.linkClosed()
    box.linkOpened(100)
    expect(frames.slice(4)).toEqual([
      { t: "msg", id: 1, type: 3, size: 6, data: Uint8Array.of(1, 2, 3, 4), end: false, again: true },
      { t: "more", id: 1, data: Uint8Array.of(5, 6), end: true },
    ])
    box.ack(1)
    await acked
    box.linkClosed()
    box.linkOpened(100)
    expect(frames).toHaveLength(6)
  })

  it("restarts a half-sent message from byte 0 on a resend notice (the relay dropped what it had of it)", () => {
    const frames: ClientToRelay[] = []
    const box = new Outbox({ maxFragment: 4, send: (f) => frames.push(f) })
    box.linkOpened(6)
    void box.enqueue(3, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)).catch(() => {})
    expect(frames.map((f) => f.t)).toEqual(["msg", "more"])
    box.notice(1, "resend", "relay restarted")
    box.addCredit(10)
    expect(frames.slice(2)).toEqual([
      { t: "abort", id: 1 },
      { t: "msg", id: 1, type: 3, size: 10, data: Uint8Array.of(1, 2, 3, 4), end: false, again: true },
      { t: "more", id: 1, data: Uint8Array.of(5, 6, 7, 8), end: false },
      { t: "more", id: 1, data: Uint8Array.of(9, 10), end: true },
    ])
  })

  it("aborts a half-sent message it gives up, and fails it with the relay's notice code", async () => {
    const frames: ClientToRelay[] = []
    const box = new Outbox({ maxFragment: 4, send: (f) => frames.push(f) })
    box.linkOpened(5)
    const first = box.enqueue(12, new Uint8Array(10), "file:1")
    const second = box.enqueue(4, new Uint8Array(2))
    box.cancel((m) => m.group === "file:1", Object.assign(new Error("x"), { reason: "cancelled" }) as never)
    await expect(first).rejects.toMatchObject({ reason: "cancelled" })
    expect(frames.map((f) => f.t)).toEqual(["msg", "more", "abort"])
    box.addCredit(10)
    expect(frames.at(-1)).toMatchObject({ t: "msg", id: 2, end: true })
    box.notice(2, "dropped-by-policy", "copy-paste is disabled")
    await expect(second).rejects.toMatchObject({ reason: "disabled", detail: "copy-paste is disabled" })
  })
})
