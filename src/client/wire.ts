// Client-link framing for the SDK: ClientToRelay frames out, RelayToClient frames in (msgpack maps, src/link/types.ts).
// Decoding never throws: a frame that is not a well-formed RelayToClient comes back as a string saying why.
import { Packr } from "msgpackr"
import type { ClientToRelay, RelayToClient } from "../link/types.ts"

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" })

export const encodeClientFrame = (frame: ClientToRelay): Uint8Array => packr.pack(frame)

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array
const isUint = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0
const isBool = (v: unknown): v is boolean => typeof v === "boolean"
const isStr = (v: unknown): v is string => typeof v === "string"
const isCaps = (v: unknown): boolean => v === null || (Array.isArray(v) && v.every(isUint))

const checks: { readonly [T in RelayToClient["t"]]: (f: Record<string, unknown>) => boolean } = {
  welcome: (f) =>
    isUint(f.v) && isStr(f.session) && (f.role === "controller" || f.role === "viewer") && typeof f.agent === "object" &&
    f.agent !== null && typeof f.policy === "object" && f.policy !== null && isUint(f.credit) && isStr(f.resume),
  agent: (f) => isBool(f.connected) && isCaps(f.caps),
  msg: (f) => isUint(f.seq) && isUint(f.type) && isUint(f.size) && isBytes(f.data) && isBool(f.end),
  more: (f) => isUint(f.seq) && isBytes(f.data) && isBool(f.end),
  abort: (f) => isUint(f.seq) && isStr(f.reason),
  ack: (f) => isUint(f.id),
  credit: (f) => isUint(f.bytes),
  notice: (f) => isStr(f.code) && isStr(f.detail) && (f.id === undefined || isUint(f.id)),
  role: (f) => f.role === "controller" || f.role === "viewer",
  pong: (f) => isUint(f.n),
  error: (f) => isStr(f.code) && isStr(f.detail),
}

export const decodeRelayFrame = (bytes: Uint8Array): RelayToClient | string => {
  let value: unknown
  try {
    value = packr.unpack(bytes)
  } catch (err) {
    return `not msgpack: ${String(err)}`
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "frame is not a map"
  const f = value as Record<string, unknown>
  const check = typeof f.t === "string" ? checks[f.t as RelayToClient["t"]] : undefined
  if (check === undefined) return `unknown frame type ${JSON.stringify(f.t)}`
  return check(f) ? (f as unknown as RelayToClient) : `malformed ${f.t} frame`
}
