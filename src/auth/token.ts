// Signed tokens (JWT, RFC 7519) carrying tenant, vm, role and lifetime. EdDSA (Ed25519, RFC 8037) with a `kid` naming
// one key of the relay's key set is the production algorithm: the relay holds public keys only. HS256 with one shared
// secret is kept for development and the test stack only, and only when the verifier is given that secret explicitly
// (docs/security.md, "Keys"). WebCrypto only, so the same code runs in workerd, Node and the browser. Verification
// never throws: it returns claims or an AuthError.
import { decodeBase64url, encodeBase64url } from "./base64url.ts"
import { KID_PATTERN, THUMBPRINT_PATTERN, importPrivateKey, isEd25519Private, type KeySet, type PrivateJwk } from "./jwk.ts"

/**
 * Who a token lets in: consoles (`controller`, `viewer`), the host bridge, operators of one VM (status, policy,
 * revocation on that VM), and `admin`: the tenant's control plane, which can only revoke, tenant-wide (its `vm` is `*`).
 */
export type TokenRole = "controller" | "viewer" | "bridge" | "operator" | "admin"

export interface Claims {
  readonly tenant: string
  readonly vm: string
  readonly role: TokenRole
  /** Expiry, not-before and issue time, seconds since the epoch (JWT NumericDate). */
  readonly exp: number
  readonly nbf: number
  readonly iat: number
  /** Unique token id: the relay remembers single-use ids until they expire. */
  readonly jti: string
  /** Single-use join token: accepted once per VM, replays are refused. */
  readonly once?: true
  /** Proof-of-possession key (RFC 7800 `cnf`): the SHA-256 thumbprint of the bridge host's public key (RFC 7638). */
  readonly cnf?: { readonly jkt: string }
}

export type AuthErrorReason =
  | "malformed" // not three base64url segments of JSON objects, or over the size cap
  | "unsupported-alg" // header alg other than EdDSA (or HS256 when enabled), including "none"; or a crit header
  | "unknown-key" // EdDSA without a kid, or a kid the key set does not hold (a retired or never-published key)
  | "wrong-key-type" // the kid names a key that is not Ed25519, or an HS256 header names a key of the key set
  | "bad-signature"
  | "invalid-claims" // a claim missing, of the wrong type or out of range
  | "expired"
  | "not-yet-valid"
  | "bad-key" // no key set nor HS256 secret, a JWKS that does not parse, a short secret (a deployment error)

export interface AuthError {
  readonly _tag: "AuthError"
  readonly reason: AuthErrorReason
  readonly detail: string
}
export type Verified = {
  readonly _tag: "Ok"
  readonly claims: Claims
  /** The key that signed it, for audit lines (`hs256` for the shared secret). */
  readonly kid: string
} | AuthError

export const authError = (reason: AuthErrorReason, detail: string): AuthError => ({ _tag: "AuthError", reason, detail })

export const TOKEN_ROLES: ReadonlyArray<TokenRole> = ["controller", "viewer", "bridge", "operator", "admin"]
/** The `vm` of an admin token: every VM of the tenant. No VM name can be `*`, so no VM route ever matches it. */
export const TENANT_WIDE_VM = "*"
/** Tenant and VM names: they build Durable Object names (`tenant/vm`) and URLs, so no separators, no spaces. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/
/** Longest token accepted before any parsing (a header can carry at most a few KiB anyway). */
export const MAX_TOKEN_LENGTH = 4096
/** Minimum signing key length in bytes: HS256 keys shorter than the hash give less than 256-bit security. */
export const MIN_KEY_BYTES = 32
/** Clock skew tolerated on exp and nbf, seconds. */
export const DEFAULT_SKEW_SECONDS = 30

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const HEADER = encodeBase64url(utf8.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })))
/** The `kid` audit lines give HS256 tokens (they carry none: the one secret is the only key). */
export const HS256_KID = "hs256"

let cachedKey: { readonly secret: string; readonly key: Promise<CryptoKey> } | undefined

/** Imports (and caches, one key per process) the HMAC key; the secret is used as its UTF-8 bytes. */
export const importSigningKey = (secret: string): Promise<CryptoKey> | AuthError => {
  if (utf8.encode(secret).length < MIN_KEY_BYTES) return authError("bad-key", `signing key shorter than ${MIN_KEY_BYTES} bytes`)
  if (cachedKey?.secret !== secret) {
    const key = crypto.subtle.importKey("raw", utf8.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])
    cachedKey = { secret, key }
  }
  return cachedKey.key
}

/**
 * A signing key: an Ed25519 private JWK with a `kid` (EdDSA, production), or a string, the HS256 shared secret of
 * development and test stacks (kept so their callers need no change).
 */
export type SigningKey = PrivateJwk | string

const privateKeys = new WeakMap<PrivateJwk, Promise<CryptoKey>>()

export const signToken = async (signingKey: SigningKey, claims: Claims): Promise<string> => {
  if (typeof signingKey !== "string") return signEdDSA(signingKey, claims)
  const secret = signingKey
  const key = importSigningKey(secret)
  if (!(key instanceof Promise)) throw new Error(key.detail)
  const input = `${HEADER}.${encodeBase64url(utf8.encode(JSON.stringify(claims)))}`
  const sig = await crypto.subtle.sign("HMAC", await key, utf8.encode(input))
  return `${input}.${encodeBase64url(new Uint8Array(sig))}`
}

const signEdDSA = async (jwk: PrivateJwk, claims: Claims): Promise<string> => {
  if (!isEd25519Private(jwk) || jwk.kid === undefined) throw new Error("signing key: an Ed25519 private JWK with a kid is required")
  let key = privateKeys.get(jwk)
  if (key === undefined) privateKeys.set(jwk, (key = importPrivateKey(jwk)))
  const header = encodeBase64url(utf8.encode(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid: jwk.kid })))
  const input = `${header}.${encodeBase64url(utf8.encode(JSON.stringify(claims)))}`
  const sig = await crypto.subtle.sign("Ed25519", await key, utf8.encode(input))
  return `${input}.${encodeBase64url(new Uint8Array(sig))}`
}

export interface MintRequest {
  readonly tenant: string
  readonly vm: string
  readonly role: TokenRole
  /** Lifetime in seconds. */
  readonly ttl: number
  readonly singleUse?: boolean
  /** Seconds since the epoch; defaults to the clock. */
  readonly now?: number
  readonly jti?: string
  /** Not-before, seconds since the epoch; defaults to `now`. */
  readonly nbf?: number
  /** Bridge tokens: thumbprint of the host key that must prove possession at connect (`cnf.jkt`). */
  readonly jkt?: string
}

const randomJti = (): string => encodeBase64url(crypto.getRandomValues(new Uint8Array(16)))

/** Mints a token; throws on a bad request (a caller bug: the CLI validates its arguments first). */
export const mintToken = (key: SigningKey, req: MintRequest): Promise<string> => {
  const now = req.now ?? Math.floor(Date.now() / 1000)
  const claims: Claims = {
    tenant: req.tenant,
    vm: req.vm,
    role: req.role,
    iat: now,
    nbf: req.nbf ?? now,
    exp: now + req.ttl,
    jti: req.jti ?? randomJti(),
    ...(req.singleUse === true ? { once: true as const } : {}),
    ...(req.jkt !== undefined ? { cnf: { jkt: req.jkt } } : {}),
  }
  const problem = checkClaims({ ...claims })
  if (problem !== undefined) return Promise.reject(new Error(problem))
  return signToken(key, claims)
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const isNumericDate = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0

/** Returns a description of the first bad claim, or undefined when all claims are well-formed. */
export const checkClaims = (c: Record<string, unknown>): string | undefined => {
  if (typeof c.tenant !== "string" || !NAME_PATTERN.test(c.tenant)) return "tenant"
  if (typeof c.role !== "string" || !TOKEN_ROLES.includes(c.role as TokenRole)) return "role"
  if (typeof c.vm !== "string" || (c.role === "admin" ? c.vm !== TENANT_WIDE_VM : !NAME_PATTERN.test(c.vm))) return "vm"
  if (!isNumericDate(c.exp) || !isNumericDate(c.nbf) || !isNumericDate(c.iat)) return "exp/nbf/iat"
  if (c.exp <= c.nbf) return "exp not after nbf"
  if (typeof c.jti !== "string" || c.jti.length < 8 || c.jti.length > 128) return "jti"
  if (c.once !== undefined && c.once !== true) return "once"
  if (c.cnf !== undefined && !(isObject(c.cnf) && typeof c.cnf.jkt === "string" && THUMBPRINT_PATTERN.test(c.cnf.jkt))) return "cnf"
  return undefined
}

const parseSegment = (segment: string): Record<string, unknown> | null => {
  const bytes = decodeBase64url(segment)
  if (bytes === null) return null
  try {
    const value: unknown = JSON.parse(utf8Strict.decode(bytes))
    return isObject(value) ? value : null
  } catch {
    return null
  }
}

export interface VerifyOptions {
  /** Milliseconds since the epoch; defaults to the clock. */
  readonly now?: number
  readonly skewSeconds?: number
}

/**
 * What a verifier trusts. `jwks`: the EdDSA key set (public keys only). `hs256`: the shared secret, only where HS256
 * is deliberately enabled; without it an HS256 token is `unsupported-alg`, whatever it was signed with.
 */
export interface TokenKeys {
  readonly jwks?: KeySet
  readonly hs256?: string
}

const headerProblem = (header: Record<string, unknown>): AuthError | undefined => {
  if ("crit" in header || (header.typ !== undefined && header.typ !== "JWT")) return authError("unsupported-alg", "unsupported header")
  if ("jwk" in header || "jku" in header || "x5u" in header || "x5c" in header) return authError("unsupported-alg", "keys are never taken from the token")
  return undefined
}

/** Checks the signature with the key the header names; undefined when it verifies. */
const checkSignature = async (keys: TokenKeys, header: Record<string, unknown>, input: string, s: string): Promise<AuthError | string> => {
  const sig = decodeBase64url(s)
  if (header.alg === "EdDSA") {
    if (typeof header.kid !== "string") return authError("unknown-key", "EdDSA token without kid")
    const entry = keys.jwks?.get(header.kid)
    if (entry === undefined) return authError("unknown-key", "no such key")
    if (entry._tag !== "Ed25519") return authError("wrong-key-type", `key is ${entry.kty}, not Ed25519`)
    if (sig === null || sig.length !== 64) return authError("malformed", "signature")
    const good = await crypto.subtle.verify("Ed25519", await entry.key, sig, utf8.encode(input))
    return good ? entry.kid : authError("bad-signature", "signature does not verify")
  }
  if (header.alg === "HS256") {
    if (keys.hs256 === undefined) return authError("unsupported-alg", "HS256 is not enabled")
    // An HS256 header naming a key of the set is the algorithm-confusion attack (public key bytes as an HMAC secret).
    if (header.kid !== undefined) return authError("wrong-key-type", "HS256 tokens carry no kid")
    if (sig === null || sig.length !== 32) return authError("malformed", "signature")
    const key = importSigningKey(keys.hs256)
    if (!(key instanceof Promise)) return key
    const good = await crypto.subtle.verify("HMAC", await key, sig, utf8.encode(input))
    return good ? HS256_KID : authError("bad-signature", "signature does not verify")
  }
  return authError("unsupported-alg", "only EdDSA is accepted")
}

/** The `kid` a token's header names (unverified: for audit lines about refusals only), if it looks like one. */
export const tokenKid = (token: string): string | undefined => {
  const h = token.length <= MAX_TOKEN_LENGTH ? parseSegment(token.split(".")[0] ?? "") : null
  return typeof h?.kid === "string" && KID_PATTERN.test(h.kid) ? h.kid : undefined
}

/**
 * Verifies algorithm, key id, signature, claims and lifetime, in that order: nothing of an unsigned payload is read.
 * `keys` as a string is the HS256 secret alone (development stacks and older callers).
 */
export const verifyToken = async (keys: TokenKeys | string, token: string, opts: VerifyOptions = {}): Promise<Verified> => {
  const trusted: TokenKeys = typeof keys === "string" ? { hs256: keys } : keys
  if (trusted.jwks === undefined && trusted.hs256 === undefined) return authError("bad-key", "no verification key configured")
  if (token.length > MAX_TOKEN_LENGTH) return authError("malformed", "token too long")
  const parts = token.split(".")
  if (parts.length !== 3) return authError("malformed", "not three segments")
  const [h, p, s] = parts as [string, string, string]
  const header = parseSegment(h)
  if (header === null) return authError("malformed", "header")
  const bad = headerProblem(header)
  if (bad !== undefined) return bad
  const kid = await checkSignature(trusted, header, `${h}.${p}`, s)
  if (typeof kid !== "string") return kid
  const claims = parseSegment(p)
  if (claims === null) return authError("malformed", "payload")
  const problem = checkClaims(claims)
  if (problem !== undefined) return authError("invalid-claims", problem)
  const c = claims as unknown as Claims
  const now = Math.floor((opts.now ?? Date.now()) / 1000)
  const skew = opts.skewSeconds ?? DEFAULT_SKEW_SECONDS
  if (now >= c.exp + skew) return authError("expired", "token expired")
  if (now < c.nbf - skew) return authError("not-yet-valid", "token not valid yet")
  const { tenant, vm, role, exp, nbf, iat, jti, once, cnf } = c
  const out: Claims = { tenant, vm, role, exp, nbf, iat, jti, ...(once === true ? { once } : {}), ...(cnf !== undefined ? { cnf: { jkt: cnf.jkt } } : {}) }
  return { _tag: "Ok", claims: out, kid }
}
