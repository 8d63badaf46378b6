// Proof of possession for bridge links (docs/security.md, "Bridge host keys"): a bridge token names the thumbprint of
// its host's key (`cnf.jkt`); on connect the relay sends a fresh nonce, the bridge signs it with the host's private key
// and sends the public key with the signature. A copy of the token without the private key cannot answer.
import { decodeBase64url, encodeBase64url } from "./base64url.ts"
import { importPublicKey, thumbprint } from "./jwk.ts"

/** Nonce length: 256 random bits drawn by the relay for each bridge link. */
export const NONCE_BYTES = 32

export const newNonce = (): string => encodeBase64url(crypto.getRandomValues(new Uint8Array(NONCE_BYTES)))

/**
 * What the host key signs: a fixed context (so the signature means nothing anywhere else), the VM the bridge meant to
 * connect to (taken from its own configuration, so a challenge relayed from another VM's link does not verify), and
 * the nonce.
 */
export const proofMessage = (vm: string, nonce: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(new TextEncoder().encode(`vdrelay bridge proof v1\n${vm}\n${nonce}`))

export const signProof = async (privateKey: CryptoKey, vm: string, nonce: string): Promise<Uint8Array> =>
  new Uint8Array(await crypto.subtle.sign("Ed25519", privateKey, proofMessage(vm, nonce)))

export type ProofFailure = "malformed" | "wrong-key" | "bad-signature"

/** Checks a proof against the token's thumbprint and this link's nonce; undefined when it holds. */
export const checkProof = async (
  proof: { readonly key: string; readonly sig: Uint8Array },
  expected: { readonly jkt: string; readonly vm: string; readonly nonce: string },
): Promise<ProofFailure | undefined> => {
  const x = decodeBase64url(proof.key)
  if (x === null || x.length !== 32 || proof.sig.length !== 64) return "malformed"
  if ((await thumbprint({ x: proof.key })) !== expected.jkt) return "wrong-key"
  let key: CryptoKey
  try {
    key = await importPublicKey({ x: proof.key })
  } catch {
    return "malformed"
  }
  const good = await crypto.subtle.verify("Ed25519", key, new Uint8Array(proof.sig), proofMessage(expected.vm, expected.nonce))
  return good ? undefined : "bad-signature"
}
