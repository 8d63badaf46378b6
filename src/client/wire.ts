// Client-link framing for the SDK, from vdrelay's link codecs: frames out as msgpack, frames in validated field by
// field. Decoding never throws: a frame that is not a well-formed RelayToClient comes back as a string saying why.
import { decodeRelayToClient, encodeClientToRelay } from "../link/client-codec.ts"
import type { ClientToRelay, RelayToClient } from "../link/types.ts"

export const encodeClientFrame = (frame: ClientToRelay): Uint8Array => encodeClientToRelay(frame)

export const decodeRelayFrame = (bytes: Uint8Array): RelayToClient | string => {
  const r = decodeRelayToClient(bytes)
  return r._tag === "Ok" ? r.value : `${r.reason}: ${r.detail}`
}
