// Fuzz target "payload": every VDAgentMessage payload codec (decodeMessage for types 0..19) and the FILE_XFER_START key
// file. Oracles: never a throw; a decoded value re-encodes (or is refused with a typed Invalid) and decodes back to
// itself; the header-only size rules (checkMessageSize) agree with the full decoders; the key file round-trips.
import { CLIENT_MESSAGE_LIMITS, checkMessageSize } from "../../../../src/protocol/size-rules.ts"
import { decodeMessage, encodeMessage } from "../../../../src/protocol/message-codec.ts"
import { formatFileXferKeys, parseFileXferKeys } from "../../../../src/protocol/key-file.ts"
import type { CodecOptions } from "../../../../src/protocol/messages.ts"
import { check, type Features, type FuzzTarget } from "../engine.ts"
import { difference, shapeOf } from "../equal.ts"
import { concat, goldenStreams, randomLayout, randomPayload } from "../gen-messages.ts"
import { u32le } from "../reference.ts"
import type { Rng } from "../rng.ts"

const KEY_FILE = 20
const layoutOf = (b: number): CodecOptions => ({ selection: (b & 1) !== 0, grabSerial: (b & 2) !== 0, detailedErrors: (b & 4) !== 0, ...((b & 8) !== 0 ? { maxMonitors: 16 } : {}) })
const layoutByte = (o: CodecOptions): number => (o.selection ? 1 : 0) | (o.grabSerial ? 2 : 0) | (o.detailedErrors === true ? 4 : 0) | (o.maxMonitors !== undefined ? 8 : 0)

const shape = (detail: string): string => detail.replace(/"(?:[^"\\]|\\.)*"/g, "S").replace(/\d+/g, "N").slice(0, 60)

const keyFile = (bytes: Uint8Array, f: Features): void => {
  const text = new TextDecoder().decode(bytes)
  const r = parseFileXferKeys(text)
  // The GLib escapes used (any other escaped character counts as one feature, so the space stays finite).
  const escapes = [...new Set((text.match(/\\./gs) ?? []).map((e) => (/^\\[sntr\\]$/.test(e) ? e : "\\?")))].sort().join("")
  f.add(r._tag === "Ok" ? `keys:ok:${Object.keys(r.value).sort().join(",")}:${escapes}` : `keys:${shape(r.detail)}`)
  if (text.includes("\r\n")) f.add("keys:crlf")
  if (r._tag !== "Ok") return
  const again = parseFileXferKeys(formatFileXferKeys(r.value))
  check(again._tag === "Ok", `key file re-parse failed: ${again._tag === "Error" ? again.detail : ""}`)
  const d = again._tag === "Ok" ? difference(again.value, r.value) : undefined
  check(d === undefined, `key file round trip: ${d}`)
}

const payload = (type: number, p: Uint8Array, o: CodecOptions, f: Features): void => {
  const d = decodeMessage(type, p, o)
  const rule = checkMessageSize(type, p.length, o)
  // The relay's upper bounds for client input only ever refuse more than the receiver's rules do.
  const limited = checkMessageSize(type, p.length, { ...o, limits: CLIENT_MESSAGE_LIMITS })
  if (rule !== undefined) check(limited !== undefined, `type ${type}: the limits accept what the size rule refuses`)
  else if (limited !== undefined) f.add(`${type}:over-client-limit`)
  f.add(d._tag === "Ok" ? `${type}:ok` : `${type}:${d.reason}:${shape(d.detail)}`)
  f.add(`${type}:len:${Math.min(p.length, 40)}`)
  if (rule?.reason === "BadSize") check(d._tag === "Invalid", `size rule refuses type ${type} of ${p.length} bytes, the decoder accepts it`)
  if (d._tag === "Invalid") return
  f.add(`${type}:${shapeOf(d.value, false)}`)
  check(rule === undefined, `decoder accepts type ${type} of ${p.length} bytes, the size rule says ${rule?.reason}`)
  const e = encodeMessage(d.value, o)
  if (e._tag === "Invalid") {
    f.add(`${type}:reencode:${e.reason}`)
    return
  }
  const back = decodeMessage(type, e.value, o)
  check(back._tag === "Ok", `re-encoded type ${type} does not decode: ${back._tag === "Invalid" ? back.detail : ""}`)
  if (back._tag !== "Ok") return
  const again = encodeMessage(back.value, o)
  check(again._tag === "Ok" && difference(again.value, e.value) === undefined, `type ${type}: encoding is not a fixpoint`)
  // What the encoder normalises (detail folding without DETAILED_ERRORS, ragged tails) must be stable from then on.
  const diff = difference(back.value, d.value)
  if (diff !== undefined) f.add(`${type}:normalised`)
  if (type === 11 && o.detailedErrors !== true) return
  if (diff !== undefined && p.length === e.value.length) check(false, `type ${type}: same-length re-encoding changed the value: ${diff}`)
}

export const payloadTarget: FuzzTarget = {
  name: "payload",
  description: "every VDAgentMessage payload codec and the FILE_XFER_START key file: decode/encode round trips, size rules",
  maxInputBytes: 4096,
  covers: ["src/protocol/codec-", "src/protocol/message-codec.ts", "src/protocol/key-file.ts", "src/protocol/size-rules.ts", "src/protocol/wire.ts"],
  seeds: () =>
    goldenStreams().flatMap((g) => {
      const out: Uint8Array[] = []
      for (let at = 0; at + 28 <= g.length; ) {
        const size = u32le(g, at + 4)
        if (size >= 20 && at + 8 + size <= g.length) for (const l of [7, 15]) out.push(concat([Uint8Array.of(u32le(g, at + 12), l), g.subarray(at + 28, at + 8 + size)]))
        at += 8 + size
      }
      return out
    }),
  generate: (r: Rng) => {
    if (r.chance(0.05)) return concat([Uint8Array.of(KEY_FILE, 0), new TextEncoder().encode(`[vdagent-file-xfer]\nname=a\\sb\nsize=${r.int(1e6)}\n`)])
    const o = r.chance(0.5) ? { ...randomLayout(r), maxMonitors: 16 } : randomLayout(r)
    const { type, payload } = randomPayload(r, o)
    return concat([Uint8Array.of(r.chance(0.05) ? r.pick([0, 17, 18, 19]) : type, layoutByte(o)), payload])
  },
  run: (input, f) => {
    const type = (input[0] ?? 0) % 21
    const o = layoutOf(input[1] ?? 0)
    const p = input.subarray(2)
    if (type === KEY_FILE) return keyFile(p, f)
    payload(type, p, o, f)
    if (type === 10 && p.length > 4) keyFile(p.subarray(4, p.indexOf(0, 4) < 0 ? p.length : p.indexOf(0, 4)), f)
  },
}
