// The result type of every decoder: Need (more bytes), Ok (value + next offset) or Invalid (typed reason).

export type InvalidReason =
  | "UnknownPort"
  | "ChunkTooLarge"
  | "ZeroLengthChunk"
  | "BadProtocol"
  | "UnknownType"
  | "MessageTooLarge"
  | "ChunkPastMessageEnd"
  | "BadSize"
  | "BadField"
  /** A count inside the payload (monitors, channels, device entries) does not fit in the payload size. */
  | "Truncated"
  | "TooManyMonitors"
  /** A u64 field above Number.MAX_SAFE_INTEGER. */
  | "UnsafeInteger"
  /** Encoding: the value cannot be expressed in the layout the peer's caps allow (e.g. a PRIMARY grab without SELECTION). */
  | "Unrepresentable"

export type Need = { readonly _tag: "Need"; readonly bytes: number }
export type Ok<A> = { readonly _tag: "Ok"; readonly value: A; readonly next: number }
export type Invalid = {
  readonly _tag: "Invalid"
  readonly reason: InvalidReason
  /** Offset (in the buffer given to the decoder) where the problem was found. */
  readonly at: number
  readonly detail: string
}
export type Decoded<A> = Need | Ok<A> | Invalid

export const need = (bytes: number): Need => ({ _tag: "Need", bytes })
export const ok = <A>(value: A, next: number): Ok<A> => ({ _tag: "Ok", value, next })
export const invalid = (reason: InvalidReason, at: number, detail: string): Invalid => ({
  _tag: "Invalid",
  reason,
  at,
  detail,
})

/** Result of a whole-payload decoder (no "need": payloads are complete). */
export type Parsed<A> = { readonly _tag: "Ok"; readonly value: A } | Invalid
export const parsed = <A>(value: A): Parsed<A> => ({ _tag: "Ok", value })

export const view = (buf: Uint8Array, at = 0, length = buf.length - at): DataView =>
  new DataView(buf.buffer, buf.byteOffset + at, length)
