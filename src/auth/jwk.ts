// Ed25519 keys as JWKs (RFC 8037): key pairs for the operator's token signing keys and the bridge hosts' proof keys,
// the relay's verification key set (a JWKS, RFC 7517 §5) and RFC 7638 thumbprints. WebCrypto only, so the same code
// runs in workerd and Node 22.
import { decodeBase64url, encodeBase64url } from "./base64url.ts"

/** A public Ed25519 key. `kid` names it in token headers; `alg`, `use` and `key_ops` are informative only. */
export interface PublicJwk {
  readonly kty: "OKP"
  readonly crv: "Ed25519"
  readonly x: string
  readonly kid?: string
  readonly alg?: string
  readonly use?: string
}
/** The private half adds `d`; it never leaves the control plane (signing keys) or the bridge host (host keys). */
export interface PrivateJwk extends PublicJwk {
  readonly d: string
}

/** Key ids: printable, no separators that could confuse a log line; thumbprints (43 characters) fit. */
export const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
/** An RFC 7638 SHA-256 thumbprint in base64url: 32 bytes, 43 characters. */
export const THUMBPRINT_PATTERN = /^[A-Za-z0-9_-]{43}$/

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const keyBytes = (v: unknown, n: number): boolean => {
  if (typeof v !== "string") return false
  const bytes = decodeBase64url(v)
  return bytes !== null && bytes.length === n
}

export const isEd25519Public = (v: unknown): v is PublicJwk => isObject(v) && v.kty === "OKP" && v.crv === "Ed25519" && keyBytes(v.x, 32)
export const isEd25519Private = (v: unknown): v is PrivateJwk => isEd25519Public(v) && keyBytes((v as unknown as Record<string, unknown>).d, 32)

/** The public half of a key (drops `d` and anything else a verifier must not need). */
export const publicJwk = (jwk: PublicJwk): PublicJwk => ({
  kty: "OKP",
  crv: "Ed25519",
  x: jwk.x,
  ...(jwk.kid !== undefined ? { kid: jwk.kid } : {}),
  alg: "EdDSA",
  use: "sig",
})

/** RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace; base64url. */
export const thumbprint = async (jwk: Pick<PublicJwk, "x">): Promise<string> => {
  const canonical = `{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`
  return encodeBase64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical))))
}

/** A fresh key pair; `kid` defaults to the key's thumbprint (unique without coordination). */
export const generateKeyPair = async (kid?: string): Promise<{ readonly privateJwk: PrivateJwk; readonly publicJwk: PublicJwk }> => {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair
  const exported = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as { x?: string; d?: string }
  if (exported.x === undefined || exported.d === undefined) throw new Error("Ed25519 export without x or d")
  const id = kid ?? (await thumbprint({ x: exported.x }))
  const privateJwk: PrivateJwk = { kty: "OKP", crv: "Ed25519", x: exported.x, d: exported.d, kid: id, alg: "EdDSA", use: "sig" }
  return { privateJwk, publicJwk: publicJwk(privateJwk) }
}

export const importPrivateKey = (jwk: PrivateJwk): Promise<CryptoKey> =>
  crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d }, { name: "Ed25519" }, false, ["sign"])

export const importPublicKey = (jwk: Pick<PublicJwk, "x">): Promise<CryptoKey> =>
  crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"])

/** One entry of the relay's key set: a usable Ed25519 key, or a key of a type the relay refuses to verify with. */
export type KeyEntry =
  | { readonly _tag: "Ed25519"; readonly kid: string; readonly key: Promise<CryptoKey> }
  | { readonly _tag: "Unsupported"; readonly kid: string; readonly kty: string }

/** Verification keys by `kid`. Several at once: that is what lets the operator rotate without a flag day. */
export type KeySet = ReadonlyMap<string, KeyEntry>

const cache = new Map<string, KeySet | Error>()

/**
 * Parses a JWKS (`{"keys": [...]}`) into a key set; an Error on a deployment mistake: bad JSON, a key without a valid
 * `kid`, two keys with one `kid`, or a private key (`d`), which would give whoever reads the Worker's configuration
 * the power to mint tokens. Keys of another type (RSA, EC, `oct`) are kept as Unsupported: a token naming one is
 * refused as `wrong-key-type` (so a symmetric `oct` key can never turn into an HMAC secret). Cached per text.
 */
export const parseJwks = (text: string): KeySet | Error => {
  const hit = cache.get(text)
  if (hit !== undefined) return hit
  const parsed = parseUncached(text)
  if (cache.size > 16) cache.clear() // a handful of texts per isolate at most (old and new secret during a deploy)
  cache.set(text, parsed)
  return parsed
}

const parseUncached = (text: string): KeySet | Error => {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    return new Error("JWKS is not JSON")
  }
  if (!isObject(doc) || !Array.isArray(doc.keys)) return new Error('JWKS has no "keys" array')
  const set = new Map<string, KeyEntry>()
  for (const k of doc.keys as unknown[]) {
    if (!isObject(k)) return new Error("JWKS entry is not an object")
    const kid = k.kid
    if (typeof kid !== "string" || !KID_PATTERN.test(kid)) return new Error("JWKS entry without a valid kid")
    if (set.has(kid)) return new Error(`JWKS has two keys with kid ${kid}`)
    if ("d" in k || "k" in k || "p" in k) return new Error(`JWKS key ${kid} carries private or symmetric key material`)
    if (isEd25519Public(k)) set.set(kid, { _tag: "Ed25519", kid, key: importPublicKey(k) })
    else set.set(kid, { _tag: "Unsupported", kid, kty: typeof k.kty === "string" ? k.kty.slice(0, 16) : "?" })
  }
  return set
}
