// fast-check arbitraries for every frame of both links (valid frames only), shared by the link tests and by anyone who
// needs random well-formed frames.
import fc from "fast-check"
import { NOTICE_CODES, LINK_ERROR_CODES, ROLES } from "../../../src/link/client-codec.ts"
import { PORT_LEVELS } from "../../../src/link/bridge-codec.ts"
import {
  LINK_VERSION,
  type BridgeToRelay,
  type ClientToRelay,
  type Policy,
  type RelayToBridge,
  type RelayToClient,
} from "../../../src/link/types.ts"

const u32 = fc.nat({ max: 0xffff_ffff })
const uint = fc.oneof(fc.nat(), fc.maxSafeNat())
const text = fc.string({ maxLength: 40 })
const bytes = fc.uint8Array({ maxLength: 300 })
const caps = fc.array(u32, { maxLength: 4 })
const role = fc.constantFrom(...ROLES)
const notice = fc.constantFrom(...NOTICE_CODES)
const linkError = fc.constantFrom(...LINK_ERROR_CODES)

export const policyArb: fc.Arbitrary<Policy> = fc.record({
  copyPaste: fc.boolean(),
  fileTransfer: fc.boolean(),
  maxClipboardBytes: u32,
  maxMessageBytes: u32,
  viewersSeeClipboard: fc.boolean(),
})

/** A first fragment whose data is a prefix of `size` bytes (the whole message when `end`). */
const fragment = fc
  .record({ type: u32, data: bytes, end: fc.boolean(), extra: fc.nat({ max: 100_000 }) })
  .map(({ type, data, end, extra }) => ({ type, size: end ? data.length : data.length + extra, data, end }))

export const clientToRelayArb: fc.Arbitrary<ClientToRelay> = fc.oneof(
  fc
    .record(
      { client: text, role, caps, resume: fc.string({ maxLength: 64 }), lastSeq: uint, origin: fc.string({ maxLength: 64 }) },
      { requiredKeys: ["client", "role", "caps"] },
    )
    .map((h) => ({ t: "hello" as const, v: LINK_VERSION, ...h })),
  fc.tuple(u32, fragment, fc.boolean()).map(([id, f, again]) => ({ t: "msg" as const, id, ...f, ...(again ? { again: true } : {}) })),
  fc.record({ id: u32, data: bytes, end: fc.boolean() }).map((r) => ({ t: "more" as const, ...r })),
  u32.map((id) => ({ t: "abort" as const, id })),
  fc.record({ x: u32, y: u32, buttons: u32, display: u32 }).map((r) => ({ t: "mouse" as const, ...r })),
  uint.map((b) => ({ t: "credit" as const, bytes: b })),
  fc.constant({ t: "control" as const }),
  uint.map((n) => ({ t: "ping" as const, n })),
)

const agentArb = fc.record({ connected: fc.boolean(), caps: fc.option(caps, { nil: null }) })

export const relayToClientArb: fc.Arbitrary<RelayToClient> = fc.oneof(
  fc
    .record({ session: text, role, agent: agentArb, policy: policyArb, credit: uint, resume: text })
    .map((w) => ({ t: "welcome" as const, v: LINK_VERSION, ...w })),
  agentArb.map((a) => ({ t: "agent" as const, ...a })),
  fc.tuple(uint, fragment).map(([seq, f]) => ({ t: "msg" as const, seq, ...f })),
  fc.record({ seq: uint, data: bytes, end: fc.boolean() }).map((r) => ({ t: "more" as const, ...r })),
  fc.record({ seq: uint, reason: notice }).map((r) => ({ t: "abort" as const, ...r })),
  u32.map((id) => ({ t: "ack" as const, id })),
  uint.map((b) => ({ t: "credit" as const, bytes: b })),
  fc
    .record({ code: notice, id: u32, type: u32, detail: text }, { requiredKeys: ["code", "detail"] })
    .map((n) => ({ t: "notice" as const, ...n })),
  role.map((r) => ({ t: "role" as const, role: r })),
  uint.map((n) => ({ t: "pong" as const, n })),
  fc.record({ code: linkError, detail: text }).map((e) => ({ t: "error" as const, ...e })),
)

export const bridgeToRelayArb: fc.Arbitrary<BridgeToRelay> = fc.oneof(
  fc
    .record({ bridge: text, epoch: uint, chardev: fc.boolean(), from: uint, wrote: uint, port: fc.constantFrom(...PORT_LEVELS) })
    .map((h) => ({ t: "hello" as const, v: LINK_VERSION, ...h })),
  fc.record({ epoch: uint, pos: uint, bytes }).map((d) => ({ t: "data" as const, ...d })),
  fc.record({ epoch: uint, up: fc.boolean() }).map((c) => ({ t: "chardev" as const, ...c })),
  fc.record({ epoch: uint, open: fc.boolean() }).map((p) => ({ t: "port" as const, ...p })),
  fc.record({ epoch: uint, pos: uint }).map((w) => ({ t: "wrote" as const, ...w })),
  uint.map((n) => ({ t: "ping" as const, n })),
)

export const relayToBridgeArb: fc.Arbitrary<RelayToBridge> = fc.oneof(
  fc.record({ epoch: uint, ack: uint, window: uint }).map((w) => ({ t: "welcome" as const, v: LINK_VERSION, ...w })),
  fc.record({ epoch: uint, pos: uint }).map((a) => ({ t: "ack" as const, ...a })),
  fc
    .record({ epoch: uint, pos: uint, port: u32, data: bytes, end: fc.boolean(), key: fc.option(fc.record({ origin: fc.string({ maxLength: 64 }), id: u32 }), { nil: undefined }) })
    .map(({ key, ...w }) => ({ t: "write" as const, ...w, ...key })),
  fc.record({ epoch: uint, pos: uint, port: u32 }).map((a) => ({ t: "abort" as const, ...a })),
  fc.record({ epoch: uint, pos: uint }).map((r) => ({ t: "rewind" as const, ...r })),
  uint.map((n) => ({ t: "pong" as const, n })),
  fc.record({ code: linkError, detail: text }).map((e) => ({ t: "error" as const, ...e })),
)
