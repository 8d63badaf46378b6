// Fuzz targets "client-link" and "bridge-link": the msgpack frame decoders of both WebSocket links, both directions,
// fed valid frames, structurally mutated frames and msgpack bombs. Oracles: never a throw; only the typed reasons; a
// decoded frame re-encodes to bytes that decode to the same frame; fragment fields are consistent; bytes fields are
// plain Uint8Array within the frame cap. Peak heap shows that a bomb cannot make the decoder allocate.
import { decodeBridgeToRelay, decodeRelayToBridge, encodeBridgeToRelay, encodeRelayToBridge } from "../../../../src/link/bridge-codec.ts"
import { decodeClientToRelay, decodeRelayToClient, encodeClientToRelay, encodeRelayToClient } from "../../../../src/link/client-codec.ts"
import type { LinkDecoded } from "../../../../src/link/codec.ts"
import { MAX_FRAME_BYTES, MAX_FRAME_DATA_BYTES } from "../../../../src/link/types.ts"
import { check, type Features, type FuzzTarget } from "../engine.ts"
import { difference, shapeOf } from "../equal.ts"
import { msgpackBomb, mutateFrame, randomBridgeToRelay, randomClientToRelay, randomRelayToBridge, randomRelayToClient } from "../gen-frames.ts"
import { Rng } from "../rng.ts"

const REASONS = new Set(["frame-too-big", "malformed", "too-deep", "unknown-frame", "bad-field", "bad-version"])

interface Direction<F extends { t: string }> {
  readonly name: string
  readonly decode: (b: Uint8Array) => LinkDecoded<F>
  readonly encode: (f: F) => Uint8Array
  readonly random: (r: Rng) => F
}

const shape = (s: string): string => s.replace(/"[^"]*"/g, "S").replace(/\d+/g, "N").slice(0, 48)

const checkFrame = (frame: Record<string, unknown>): void => {
  for (const [k, v] of Object.entries(frame)) {
    if (v instanceof Uint8Array) {
      check(v.constructor === Uint8Array, `${k} is a ${v.constructor.name}, not a plain Uint8Array`)
      check(v.byteLength <= MAX_FRAME_DATA_BYTES, `${k} holds ${v.byteLength} bytes`)
    }
    if (typeof v === "number") check(Number.isFinite(v), `${k} = ${v}`)
  }
  if ((frame.t === "msg" || frame.t === "more") && frame.data instanceof Uint8Array && typeof frame.size === "number") {
    check(frame.data.length <= frame.size, "msg data longer than size")
    check(!frame.end || frame.data.length === frame.size, "msg end with data shorter than size")
  }
}

const runDirection = <F extends { t: string }>(d: Direction<F>, input: Uint8Array, f: Features): void => {
  const r = d.decode(input)
  if (r._tag === "Invalid") {
    check(REASONS.has(r.reason), `untyped reason ${r.reason}`)
    f.add(`${d.name}:${r.reason}:${shape(r.detail.split(":").slice(0, r.reason === "bad-field" ? 2 : 1).join(":"))}`)
    return
  }
  f.add(`${d.name}:ok:${shapeOf(r.value)}`)
  checkFrame(r.value as unknown as Record<string, unknown>)
  const again = d.decode(d.encode(r.value))
  check(again._tag === "Ok", `${d.name}: a decoded ${r.value.t} frame does not decode once re-encoded`)
  const diff = again._tag === "Ok" ? difference(again.value, r.value) : undefined
  check(diff === undefined, `${d.name}: ${r.value.t} round trip: ${diff}`)
}

let big: Uint8Array | undefined
const oversized = (input: Uint8Array): Uint8Array => {
  big ??= new Uint8Array(MAX_FRAME_BYTES + 1)
  big.set(input)
  return big
}

const makeTarget = <A extends { t: string }, B extends { t: string }>(name: string, what: string, a: Direction<A>, b: Direction<B>): FuzzTarget => ({
  name,
  description: `${what} frame decoders (both directions): valid, mutated and bomb frames; round trips`,
  maxInputBytes: 128 * 1024,
  covers: ["src/link/"],
  seeds: () => {
    const r = new Rng(42)
    return [...Array.from({ length: 64 }, () => a.encode(a.random(r))), ...Array.from({ length: 64 }, () => b.encode(b.random(r))), ...Array.from({ length: 32 }, () => msgpackBomb(r))]
  },
  generate: (r) => (r.chance(0.001) ? Uint8Array.of(0xff, 0x81) : r.chance(0.15) ? msgpackBomb(r) : r.chance(0.5) ? a.encode(a.random(r)) : b.encode(b.random(r))),
  mutate: (r, input) => mutateFrame(r, input),
  run: (input, f) => {
    // A short input starting 0xff stands for a frame over the 1 MiB cap (inputs themselves are kept small).
    const bytes = input.length > 0 && input.length < 8 && input[0] === 0xff ? oversized(input) : input
    runDirection(a, bytes, f)
    runDirection(b, bytes, f)
  },
})

export const clientLinkTarget = makeTarget(
  "client-link",
  "client link (console ⇄ relay)",
  { name: "c2r", decode: decodeClientToRelay, encode: encodeClientToRelay, random: randomClientToRelay },
  { name: "r2c", decode: decodeRelayToClient, encode: encodeRelayToClient, random: randomRelayToClient },
)

export const bridgeLinkTarget = makeTarget(
  "bridge-link",
  "bridge link (host bridge ⇄ relay)",
  { name: "b2r", decode: decodeBridgeToRelay, encode: encodeBridgeToRelay, random: randomBridgeToRelay },
  { name: "r2b", decode: decodeRelayToBridge, encode: encodeRelayToBridge, random: randomRelayToBridge },
)
