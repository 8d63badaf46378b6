// Structure-aware generators for both link protocols: random valid frames of every `t` in both directions, msgpack
// bombs (huge declared lengths and counts, deep nesting, extension types, non-string keys), and mutation of a frame's
// decoded msgpack value (fields dropped, retyped, renamed, oversized) before re-encoding it.
import { Packr } from "msgpackr"
import { NOTICE_CODES, LINK_ERROR_CODES } from "../../../src/link/client-codec.ts"
import { PORT_LEVELS } from "../../../src/link/bridge-codec.ts"
import { defaultPolicy, type BridgeToRelay, type ClientToRelay, type RelayToBridge, type RelayToClient } from "../../../src/link/types.ts"
import { INTERESTING_U32 } from "./mutate.ts"
import type { Rng } from "./rng.ts"

const n32 = (r: Rng): number => (r.chance(0.3) ? r.pick(INTERESTING_U32) : r.u32())
const nat = (r: Rng): number => (r.chance(0.2) ? r.pick([0, 1, 2 ** 32, 2 ** 53 - 1]) : r.int(1e6))
const str = (r: Rng, max = 24): string => "x".repeat(r.size(max))
const bin = (r: Rng, max = 300): Uint8Array => r.bytes(r.size(max))
const caps = (r: Rng): number[] => Array.from({ length: r.size(4) }, () => n32(r))
const role = (r: Rng) => r.pick(["controller", "viewer"] as const)

const fragment = (r: Rng) => {
  const size = r.size(600)
  const data = r.bytes(r.chance(0.5) ? size : r.int(size + 1))
  return { type: r.range(1, 16), size, data, end: data.length === size }
}

export const randomClientToRelay = (r: Rng): ClientToRelay => {
  switch (r.int(8)) {
    case 0: return { t: "hello", v: 1, client: str(r), role: role(r), caps: caps(r), ...(r.chance(0.3) ? { resume: str(r), lastSeq: nat(r) } : {}) }
    case 1: return { t: "msg", id: n32(r), ...fragment(r) }
    case 2: return { t: "more", id: n32(r), data: bin(r), end: r.chance(0.5) }
    case 3: return { t: "abort", id: n32(r) }
    case 4: return { t: "mouse", x: n32(r), y: n32(r), buttons: n32(r), display: r.int(300) }
    case 5: return { t: "credit", bytes: nat(r) }
    case 6: return { t: "control" }
    default: return { t: "ping", n: nat(r) }
  }
}

export const randomRelayToClient = (r: Rng): RelayToClient => {
  const agent = { connected: r.chance(0.5), caps: r.chance(0.3) ? null : caps(r) }
  switch (r.int(11)) {
    case 0: return { t: "welcome", v: 1, session: str(r), role: role(r), agent, policy: { ...defaultPolicy, copyPaste: r.chance(0.5) }, credit: nat(r), resume: str(r) }
    case 1: return { t: "agent", ...agent }
    case 2: return { t: "msg", seq: nat(r), ...fragment(r) }
    case 3: return { t: "more", seq: nat(r), data: bin(r), end: r.chance(0.5) }
    case 4: return { t: "abort", seq: nat(r), reason: r.pick(NOTICE_CODES) }
    case 5: return { t: "ack", id: n32(r) }
    case 6: return { t: "credit", bytes: nat(r) }
    case 7: return { t: "notice", code: r.pick(NOTICE_CODES), ...(r.chance(0.5) ? { id: n32(r), type: r.range(1, 16) } : {}), detail: str(r) }
    case 8: return { t: "role", role: role(r) }
    case 9: return { t: "pong", n: nat(r) }
    default: return { t: "error", code: r.pick(LINK_ERROR_CODES), detail: str(r) }
  }
}

export const randomBridgeToRelay = (r: Rng): BridgeToRelay => {
  const epoch = nat(r)
  switch (r.int(6)) {
    case 0: return { t: "hello", v: 1, bridge: str(r), epoch, chardev: r.chance(0.5), from: nat(r), wrote: nat(r), port: r.pick(PORT_LEVELS) }
    case 1: return { t: "data", epoch, pos: nat(r), bytes: bin(r) }
    case 2: return { t: "chardev", epoch, up: r.chance(0.5) }
    case 3: return { t: "port", epoch, open: r.chance(0.5) }
    case 4: return { t: "wrote", epoch, pos: nat(r) }
    default: return { t: "ping", n: nat(r) }
  }
}

export const randomRelayToBridge = (r: Rng): RelayToBridge => {
  const epoch = nat(r)
  switch (r.int(7)) {
    case 0: return { t: "welcome", v: 1, epoch, ack: nat(r), window: nat(r) }
    case 1: return { t: "ack", epoch, pos: nat(r) }
    case 2: return { t: "write", epoch, pos: nat(r), port: r.range(0, 3), data: bin(r), end: r.chance(0.5) }
    case 3: return { t: "abort", epoch, pos: nat(r), port: r.range(0, 3) }
    case 4: return { t: "rewind", epoch, pos: nat(r) }
    case 5: return { t: "pong", n: nat(r) }
    default: return { t: "error", code: r.pick(LINK_ERROR_CODES), detail: str(r) }
  }
}

const u32be = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]
const fixstr = (s: string): number[] => [0xa0 | s.length, ...Array.from(s, (c) => c.charCodeAt(0))]

/** Hand-made msgpack bombs: each declares far more than it holds, nests deeper than any frame, or uses banned types. */
export const msgpackBomb = (r: Rng): Uint8Array => {
  const head = [0x82, ...fixstr("t"), ...fixstr("msg"), ...fixstr("data")]
  const huge = r.pick([0xffff_ffff, 0x8000_0000, 0x10_0000, 2 ** 31 - 1])
  switch (r.int(9)) {
    case 0: return Uint8Array.from([...head, 0xc6, ...u32be(huge), 1, 2, 3]) // bin32 of 4 GiB
    case 1: return Uint8Array.from([...head, 0xdb, ...u32be(huge), 0x61]) // str32
    case 2: return Uint8Array.from([...head, 0xdd, ...u32be(huge), 0xc0]) // array32 of 2^32 − 1 items
    case 3: return Uint8Array.from([0xdf, ...u32be(huge), ...fixstr("t")]) // map32
    case 4: {
      const depth = r.pick([4, 8, 64, 1000, 100_000])
      return Uint8Array.from([...head, ...Array(depth).fill(0x91), 0xc0]) // nested arrays
    }
    case 5: {
      const depth = r.pick([4, 8, 64, 5000])
      const out: number[] = []
      for (let i = 0; i < depth; i++) out.push(0x81, ...fixstr("a"))
      return Uint8Array.from([...out, 0xc0]) // nested maps
    }
    case 6: return Uint8Array.from([...head, r.pick([0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc8, 0xc9, 0xc1]), 0xff, 0, 0, 0, 0, 0]) // ext / never-used
    case 7: return Uint8Array.from([0x81, 0x01, 0x02]) // integer map key
    default: return Uint8Array.from([...head, 0xdc, 0xff, 0xff, ...Array(r.int(16)).fill(0xc0)]) // array16 over-declared
  }
}

const packr = new Packr({ useRecords: false, variableMapSize: true, mapsAsObjects: true, moreTypes: false })

const randomValue = (r: Rng): unknown =>
  r.pick([
    () => null,
    () => r.chance(0.5),
    () => -r.int(1000) - 1,
    () => r.int(100) + 0.5,
    () => 2 ** 64,
    () => BigInt("18446744073709551615"),
    () => n32(r),
    () => 2 ** 53 + 2,
    () => Number.NaN,
    () => "x".repeat(r.pick([0, 1, 300, 1100, 70_000])),
    () => r.bytes(r.pick([0, 5, 2048, 70_000])),
    () => [1, [2, [3, [4]]]],
    () => ({ nested: { deeper: { deepest: 1 } } }),
    () => Array(r.pick([0, 33, 1000])).fill(1),
    () => r.pick(["hello", "msg", "welcome", "data", "write", "constructor", "__proto__", "toString"]),
  ])()

/** Mutates a frame as a msgpack value: a field removed, replaced by a value of another type, renamed or added. */
export const mutateFrame = (r: Rng, bytes: Uint8Array): Uint8Array => {
  let value: unknown
  try {
    value = packr.unpack(bytes)
  } catch {
    return bytes
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return bytes
  const o = { ...(value as Record<string, unknown>) }
  const keys = Object.keys(o)
  for (let i = 1 + r.int(3); i > 0; i--) {
    const k = keys.length > 0 && r.chance(0.8) ? r.pick(keys) : r.pick(["t", "v", "extra", "constructor", "__proto__", "size", "data", "end", "epoch", "pos"])
    const what = r.int(4)
    if (what === 0) delete o[k]
    else if (what === 1) o[k] = randomValue(r)
    else if (what === 2 && typeof o[k] === "number") o[k] = (o[k] as number) + r.pick([-1, 1, 2 ** 32, -(2 ** 32)])
    else o[k] = randomValue(r)
  }
  try {
    const out = packr.pack(o)
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
  } catch {
    return bytes
  }
}
