// Pointer priority in the SDK's outbox: while the pointer moves, bulk data is kept to a small amount unreturned by
// credit (a move queues behind less of it); otherwise, and once the pointer rests, the whole credit is used.
import { expect, it } from "vitest"
import { Outbox } from "../../../src/client/outbox.ts"
import type { ClientToRelay } from "../../../src/link/types.ts"

const KiB = 1024
const dataBytes = (frames: ClientToRelay[]): number =>
  frames.reduce((n, f) => n + (f.t === "msg" || f.t === "more" ? f.data.length : 0), 0)

const rig = (opts: { pointerBusyBytes?: number } = {}) => {
  let clock = 1000
  const frames: ClientToRelay[] = []
  const box = new Outbox({ maxFragment: 64 * KiB, send: (f) => frames.push(f), now: () => clock, pointerBusyMs: 100, ...opts })
  return { box, frames, advance: (ms: number) => (clock += ms) }
}

it("uses the whole credit while the pointer rests", () => {
  const { box, frames } = rig()
  box.linkOpened(1024 * KiB)
  void box.enqueue(1, new Uint8Array(4096 * KiB))
  expect(dataBytes(frames)).toBe(1024 * KiB)
})

it("keeps at most the pointer-busy amount unreturned while the pointer moves, and continues as credit comes back", () => {
  const { box, frames } = rig({ pointerBusyBytes: 256 * KiB })
  box.linkOpened(1024 * KiB)
  box.pointerMoved()
  void box.enqueue(1, new Uint8Array(4096 * KiB))
  expect(dataBytes(frames)).toBe(256 * KiB)
  box.addCredit(64 * KiB)
  expect(dataBytes(frames)).toBe(320 * KiB) // 64 KiB more: still 256 KiB unreturned
})

it("uses the whole credit again once the pointer has rested", async () => {
  const { box, frames, advance } = rig({ pointerBusyBytes: 256 * KiB })
  box.linkOpened(1024 * KiB)
  box.pointerMoved()
  void box.enqueue(1, new Uint8Array(4096 * KiB))
  expect(dataBytes(frames)).toBe(256 * KiB)
  advance(150)
  box.addCredit(64 * KiB) // returns part of what is in flight; the credit left is 768 + 64 KiB
  expect(dataBytes(frames)).toBe(1088 * KiB)
})

it("resumes by itself when the pointer rests and no credit is due", async () => {
  let clock = 1000
  const frames: ClientToRelay[] = []
  const box = new Outbox({ maxFragment: 64 * KiB, send: (f) => frames.push(f), now: () => clock, pointerBusyMs: 20, pointerBusyBytes: 64 * KiB })
  box.linkOpened(1024 * KiB)
  box.pointerMoved()
  void box.enqueue(1, new Uint8Array(512 * KiB))
  expect(dataBytes(frames)).toBe(64 * KiB)
  clock += 25
  await new Promise((r) => setTimeout(r, 40))
  expect(dataBytes(frames)).toBe(512 * KiB)
})

it("is off with pointerBusyBytes 0", () => {
  const { box, frames } = rig({ pointerBusyBytes: 0 })
  box.linkOpened(1024 * KiB)
  box.pointerMoved()
  void box.enqueue(1, new Uint8Array(4096 * KiB))
  expect(dataBytes(frames)).toBe(1024 * KiB)
})
