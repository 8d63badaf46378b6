// The chaos rig's whole-stream oracle fails on what a per-message check lets through: a FILE_XFER_DATA written twice,
// blocks out of order, DATA after the cancel or on another agent connection, a file reported done that differs.
import { describe, expect, it } from "vitest"
import { GuestStream } from "../../harness/chaos/guest-stream.ts"
import { encodeChunkedMessage } from "../../../src/protocol/chunker.ts"

const u32 = (...w: number[]): Buffer => Buffer.concat(w.map((x) => { const b = Buffer.alloc(4); b.writeUInt32LE(x); return b }))
const msg = (type: number, payload: Buffer): Buffer => Buffer.from(encodeChunkedMessage(1, type, payload))
const start = (id: number): Buffer => msg(10, Buffer.concat([u32(id), Buffer.from("[vdagent-file-xfer]\nname=f\nsize=8\n\0")]))
const data = (id: number, bytes: Buffer): Buffer => msg(12, Buffer.concat([u32(id), u32(bytes.length, 0), bytes]))
const status = (id: number, result: number): Buffer => msg(11, u32(id, result))
const file = Buffer.from("abcdefgh")
const [b1, b2] = [file.subarray(0, 4), file.subarray(4)]

/** Feeds `parts` to one guest connection cut at odd offsets (the chardev hands bytes over in any pieces). */
const feed = (g: GuestStream, connection: number, ...parts: Buffer[]): void => {
  const all = Buffer.concat(parts)
  for (let at = 0; at < all.length; at += 7) g.feed(all.subarray(at, at + 7), connection)
}

describe("guest stream oracle", () => {
  it("passes a transfer written once, in order, and one cancelled after a prefix", () => {
    const g = new GuestStream()
    feed(g, 1, start(1), data(1, b1), data(1, b2), start(2), data(2, b1), status(2, 1))
    g.judgeFile(1, file, "done")
    g.judgeFile(2, file, "failed")
    expect(g.problems).toEqual([])
  })

  it("fails on a DATA block written twice (the restart defect), though each message is whole", () => {
    const g = new GuestStream()
    feed(g, 1, start(1), data(1, b1), data(1, b1), data(1, b2))
    g.judgeFile(1, file, "done")
    expect(g.problems.join("\n")).toMatch(/reported done, the guest got 12 bytes of 8, differing from byte 4/)
  })

  it("fails on blocks out of order, and on a START written twice", () => {
    const g = new GuestStream()
    feed(g, 1, start(1), start(1), data(1, b2), data(1, b1))
    g.judgeFile(1, file, "done")
    expect(g.problems).toHaveLength(2)
    expect(g.problems[0]).toMatch(/START written twice/)
    expect(g.problems[1]).toMatch(/differing from byte 0/)
  })

  it("fails on DATA after the cancel, on DATA sent to a new agent connection, and on a failure the agent never heard of", () => {
    const g = new GuestStream()
    feed(g, 1, start(1), data(1, b1), status(1, 1), data(1, b2), start(2), data(2, b1), start(3))
    feed(g, 2, data(2, b2))
    g.judgeFile(3, file, "failed")
    feed(g, 2, start(4), data(4, b1))
    g.judgeFile(4, file, "failed")
    expect(g.problems).toEqual([
      "file 1: DATA written after its cancel",
      "file 2: DATA on guest connection 2, its START went to connection 1",
      "file 4: reported failed, the agent connection that holds it was never told",
    ])
  })

  it("fails on bytes that are no chunk (stale or torn) at the start of a connection", () => {
    const g = new GuestStream()
    const whole = data(1, b1)
    feed(g, 1, start(1))
    feed(g, 2, whole.subarray(11), start(2))
    expect(g.problems.join("\n")).toMatch(/guest connection 2: .*torn or stale/)
  })

  it("fails on held bytes handed to an opener after a close of 20 ms or more, even when they parse as a message start", () => {
    const g = new GuestStream()
    feed(g, 1, start(1))
    // The daemon-restart-down failure: a message begun while no guest had the port open, handed to the next opener.
    g.staleHeld(4_112, 2, 1_500)
    feed(g, 2, start(2).subarray(0, 4_112))
    expect(g.problems).toEqual(["guest connection 2: 4112 B written while the guest port was closed (1500 ms) were handed to the next opener (stale)"])
  })

  it("counts held bytes of a bounce (reopened within 20 ms, faster than any host can learn of the close) without failing", () => {
    const g = new GuestStream()
    g.staleHeld(512, 3, 4)
    expect(g.problems).toEqual([])
    expect(g.bounceHeldBytes).toBe(512)
  })
})
