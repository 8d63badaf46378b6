// Authentication frames, on both links and outside the session's frame unions (the session actor never sees them):
// the bridge's proof of possession of its host key, and a fresh token presented over an open link before the one it
// joined with expires. docs/protocol.md, "Authentication frames"; docs/security.md.
import { decodeFrame, encodeFrame, type FrameReaders, type LinkDecoded } from "./codec.ts"

/** Longest token accepted over a link (the edge's cap on a token in a header). */
export const MAX_LINK_TOKEN_LENGTH = 4096

/** Relay → bridge, first frame of a link whose token names a host key: sign `nonce` (src/auth/proof.ts). */
export type RelayChallenge = { readonly t: "challenge"; readonly nonce: string }

export type PeerAuthFrame =
  /** Bridge → relay, the answer before anything else: the host's public key (JWK `x`) and its Ed25519 signature. */
  | { readonly t: "proof"; readonly key: string; readonly sig: Uint8Array }
  /**
   * Console or bridge → relay on a joined link: a fresh token for the same tenant, VM and role (and host key). The
   * link then ends at the new token's expiry instead of the old one's; a token refused ends the link (close 4401).
   */
  | { readonly t: "token"; readonly token: string }

const peerReaders: FrameReaders<PeerAuthFrame> = {
  proof: (f) => ({ t: "proof", key: f.str("key", 64), sig: f.bin("sig", 64) }),
  token: (f) => ({ t: "token", token: f.str("token", MAX_LINK_TOKEN_LENGTH) }),
}
const relayReaders: FrameReaders<RelayChallenge> = { challenge: (f) => ({ t: "challenge", nonce: f.str("nonce", 64) }) }

export const encodePeerAuth = (frame: PeerAuthFrame): Uint8Array => encodeFrame(frame)
export const encodeChallenge = (frame: RelayChallenge): Uint8Array => encodeFrame(frame)
export const decodePeerAuth = (data: Uint8Array | ArrayBuffer): LinkDecoded<PeerAuthFrame> => decodeFrame(data, peerReaders)
export const decodeChallenge = (data: Uint8Array | ArrayBuffer): LinkDecoded<RelayChallenge> => decodeFrame(data, relayReaders)
