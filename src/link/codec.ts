// The msgpack envelope shared by both links: one msgpackr Packr (plain maps, no records), the size cap and bomb scan run
// before decoding, and the typed decode error. Per-link frame tables live in client-codec.ts and bridge-codec.ts.
import { Packr } from "msgpackr"
import { Fields } from "./fields.ts"
import { scanMsgpack } from "./msgpack-scan.ts"
import { LINK_VERSION, MAX_FRAME_BYTES, type LinkErrorCode } from "./types.ts"

export type LinkDecodeReason =
  | "frame-too-big" // over the frame cap: checked before a single byte is parsed
  | "malformed" // not one msgpack map, a declared length past the end, extension types, trailing bytes
  | "too-deep" // nesting deeper than any frame needs
  | "unknown-frame" // missing or unknown `t`
  | "bad-field" // a field missing, of the wrong type, out of range, or inconsistent with another
  | "bad-version" // hello/welcome with a link version we do not speak

export interface LinkDecodeError {
  readonly _tag: "Invalid"
  readonly reason: LinkDecodeReason
  readonly detail: string
}
export type LinkDecoded<A> = { readonly _tag: "Ok"; readonly value: A } | LinkDecodeError

export const linkDecodeError = (reason: LinkDecodeReason, detail: string): LinkDecodeError => ({ _tag: "Invalid", reason, detail })

/** The link error (hence close code) a decode failure maps to. */
export const linkErrorOfDecode = (e: LinkDecodeError): LinkErrorCode => (e.reason === "frame-too-big" ? "too-big" : "protocol")

/** Frames nest at most this deep (frame map → welcome.agent map → caps array). */
export const MAX_NESTING = 3

// useRecords: false keeps frames self-describing maps (no shared structures between peers); variableMapSize makes small
// maps fixmaps. msgpackr only compiles readers with `new Function` for records, which workerd refuses; we never use them.
const packr = new Packr({ useRecords: false, variableMapSize: true, mapsAsObjects: true, moreTypes: false })

/** Encodes one frame; keys whose value is undefined are left out (msgpackr would write them as an extension). */
export const encodeFrame = (frame: object): Uint8Array => {
  let value: object = frame
  for (const k in frame) {
    if ((frame as Record<string, unknown>)[k] === undefined) {
      value = Object.fromEntries(Object.entries(frame).filter(([, v]) => v !== undefined))
      break
    }
  }
  const out = packr.pack(value)
  return out.constructor === Uint8Array ? out : new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
}

export type FrameReaders<F> = { readonly [T in string]?: (f: Fields) => F }

const toBytes = (data: Uint8Array | ArrayBuffer): Uint8Array => (data instanceof Uint8Array ? data : new Uint8Array(data))

/** Decodes one frame with the given per-`t` readers; never throws. */
export const decodeFrame = <F>(data: Uint8Array | ArrayBuffer, readers: FrameReaders<F>, maxFrameBytes = MAX_FRAME_BYTES): LinkDecoded<F> => {
  const bytes = toBytes(data)
  if (bytes.byteLength > maxFrameBytes) return linkDecodeError("frame-too-big", `frame of ${bytes.byteLength} bytes over ${maxFrameBytes}`)
  const problem = scanMsgpack(bytes, MAX_NESTING)
  if (problem !== undefined) return linkDecodeError(problem === "nested too deep" ? "too-deep" : "malformed", problem)
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (e) {
    return linkDecodeError("malformed", e instanceof Error ? e.message : "undecodable")
  }
  const obj = raw as Record<string, unknown>
  const t = obj.t
  const read = typeof t === "string" && Object.hasOwn(readers, t) ? readers[t] : undefined
  if (read === undefined) return linkDecodeError("unknown-frame", typeof t === "string" ? `unknown frame "${t.slice(0, 32)}"` : "no frame type")
  const f = new Fields(obj)
  if (f.has("v") && (t === "hello" || t === "welcome") && obj.v !== LINK_VERSION) {
    return linkDecodeError("bad-version", `link version ${String(obj.v).slice(0, 16)}; this relay speaks ${LINK_VERSION}`)
  }
  const value = read(f)
  return f.problem === undefined ? { _tag: "Ok", value } : linkDecodeError("bad-field", f.problem)
}

/** Reads `v` of a hello/welcome (its value was already checked against LINK_VERSION). */
export const version = (f: Fields): number => f.uint("v")
