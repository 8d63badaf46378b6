// The byte-level examples of docs/protocol.md, checked both ways so the document cannot drift from the codecs.
import { expect, it } from "vitest"
import { decodeBridgeToRelay, decodeRelayToBridge, encodeBridgeToRelay, encodeRelayToBridge } from "../../../src/link/bridge-codec.ts"
import { decodeClientToRelay, decodeRelayToClient, encodeClientToRelay, encodeRelayToClient } from "../../../src/link/client-codec.ts"
import type { BridgeToRelay, ClientToRelay, RelayToBridge, RelayToClient } from "../../../src/link/types.ts"

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)?.map((b) => parseInt(b, 16)) ?? [])

type Vector =
  | { readonly link: "c2r"; readonly frame: ClientToRelay; readonly hex: string }
  | { readonly link: "r2c"; readonly frame: RelayToClient; readonly hex: string }
  | { readonly link: "b2r"; readonly frame: BridgeToRelay; readonly hex: string }
  | { readonly link: "r2b"; readonly frame: RelayToBridge; readonly hex: string }

const vectors: ReadonlyArray<Vector> = [
  {
    link: "c2r",
    frame: { t: "hello", v: 1, client: "sdk/0.1", role: "controller", caps: [0x2f7] },
    hex: "85 a174 a568656c6c6f a176 01 a6636c69656e74 a773646b2f302e31 a4726f6c65 aa636f6e74726f6c6c6572 a463617073 91cd02f7",
  },
  {
    link: "c2r",
    frame: { t: "msg", id: 7, type: 4, size: 9, data: hex("01 00 00 00 68 69 21 00 00"), end: true },
    hex: "86 a174 a36d7367 a26964 07 a474797065 04 a473697a65 09 a464617461 c409 010000006869210000 a3656e64 c3",
  },
  { link: "c2r", frame: { t: "credit", bytes: 262144 }, hex: "82 a174 a6637265646974 a56279746573 ce00040000" },
  {
    link: "r2c",
    frame: { t: "abort", seq: 43, reason: "dropped-by-disconnect" },
    hex: "83 a174 a561626f7274 a3736571 2b a6726561736f6e b5 64726f707065642d62792d646973636f6e6e656374",
  },
  { link: "r2c", frame: { t: "ack", id: 7 }, hex: "82 a174 a361636b a26964 07" },
  {
    link: "b2r",
    frame: { t: "hello", v: 1, bridge: "host-a", epoch: 3, chardev: true, from: 0, wrote: 0, port: "open" },
    hex: "88 a174 a568656c6c6f a176 01 a6627269646765 a6686f73742d61 a565706f6368 03 a763686172646576 c3 a466726f6d 00 a577726f7465 00 a4706f7274 a46f70656e",
  },
  {
    link: "b2r",
    frame: { t: "data", epoch: 3, pos: 4096, bytes: hex("01 00 00 00 14 00 00 00") },
    hex: "84 a174 a464617461 a565706f6368 03 a3706f73 cd1000 a56279746573 c408 0100000014000000",
  },
  {
    link: "r2b",
    frame: { t: "welcome", v: 1, epoch: 3, ack: 4096, window: 1048576 },
    hex: "85 a174 a777656c636f6d65 a176 01 a565706f6368 03 a361636b cd1000 a677696e646f77 ce00100000",
  },
  {
    link: "r2b",
    frame: { t: "write", epoch: 3, pos: 0, port: 1, data: hex("01 02"), end: true },
    hex: "86 a174 a57772697465 a565706f6368 03 a3706f73 00 a4706f7274 01 a464617461 c402 0102 a3656e64 c3",
  },
  {
    link: "r2b",
    frame: { t: "error", code: "replaced", detail: "another bridge" },
    hex: "83 a174 a56572726f72 a4636f6465 a87265706c61636564 a664657461696c ae 616e6f74686572206272696467 65",
  },
]

const codecs = {
  c2r: [encodeClientToRelay, decodeClientToRelay],
  r2c: [encodeRelayToClient, decodeRelayToClient],
  b2r: [encodeBridgeToRelay, decodeBridgeToRelay],
  r2b: [encodeRelayToBridge, decodeRelayToBridge],
} as const

it.each(vectors.map((v) => [`${v.link} ${v.frame.t}`, v] as const))("%s encodes to the documented bytes and back", (_name, v) => {
  const [encode, decode] = codecs[v.link] as unknown as readonly [(f: unknown) => Uint8Array, (b: Uint8Array) => unknown]
  expect(Buffer.from(encode(v.frame)).toString("hex")).toBe(v.hex.replace(/\s+/g, ""))
  expect(decode(hex(v.hex))).toEqual({ _tag: "Ok", value: v.frame })
})
