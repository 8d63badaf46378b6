// The bridge confirms a streamed message's progress at once: the relay gives the console its credit back on that
// `wrote`, so deferring it like pointer-only progress (once per 32 moves or per pause) would stall every transfer
// larger than the guest window at each window's end.
import { expect, it } from "vitest"
import type { BridgeToRelay } from "../../../src/link/types.ts"
import { defaultLimits } from "../../../src/bridge/config.ts"
import { GuestWriter } from "../../../src/bridge/guest-writer.ts"
import { jsonLogger } from "../../../src/bridge/log.ts"
import { Metrics } from "../../../src/bridge/metrics.ts"
import type { ChardevPort } from "../../../src/bridge/ports.ts"
import { message, mouseState } from "./guest.ts"

const rig = () => {
  const sent: BridgeToRelay[] = []
  const written: Uint8Array[] = []
  const chardev: ChardevPort = { write: (b, done) => (written.push(b), done()), pause: () => {}, resume: () => {}, close: () => {} }
  const writer = new GuestWriter("vm1", defaultLimits, jsonLogger(() => {}, "error"), new Metrics(), {
    epoch: 1,
    port: "open",
    chardev,
    sendIfSynced: (f) => void sent.push(f),
    changed: () => {},
  })
  const wrote = () => sent.filter((f): f is Extract<BridgeToRelay, { t: "wrote" }> => f.t === "wrote")
  return { writer, wrote, written }
}

it("confirms the received bytes of an unfinished port-1 message as they arrive", () => {
  const { writer, wrote } = rig()
  const big = message(1, 4, new Uint8Array(3 << 20).fill(7))
  const piece = 256 * 1024
  for (let at = 0; at < 3 * piece; at += piece) {
    writer.write(at, 1, big.subarray(at, at + piece), false)
    expect(wrote().at(-1)?.pos).toBe(at + piece)
  }
})

it("still defers pointer-only progress: a few whole MOUSE_STATEs are not confirmed one by one", () => {
  const { writer, wrote, written } = rig()
  let pos = 0
  for (let i = 0; i < 3; i++) {
    const m = mouseState(i, i)
    writer.write(pos, 2, m, true)
    pos += m.length
  }
  expect(written.length).toBe(3)
  expect(wrote().length).toBe(0)
})
