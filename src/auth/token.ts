// Signed tokens (JWT, RFC 7519, HS256 only) carrying tenant, vm, role and lifetime; signed and verified with WebCrypto so
// the same code runs in workerd, Node and the browser. Verification never throws: it returns claims or an AuthError.
import type { TokenRole } from "../link/types.ts"
import { decodeBase64url, encodeBase64url } from "./base64url.ts"

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
}

export type AuthErrorReason =
  | "malformed" // not three base64url segments of JSON objects, or over the size cap
  | "unsupported-alg" // header alg other than HS256 (including "none"), or a crit header
  | "bad-signature"
  | "invalid-claims" // a claim missing, of the wrong type or out of range
  | "expired"
  | "not-yet-valid"
  | "bad-key" // the signing key is missing or too short (a deployment error, not the caller's)

export interface AuthError {
  readonly _tag: "AuthError"
  readonly reason: AuthErrorReason
  readonly detail: string
}
export type Verified = { readonly _tag: "Ok"; readonly claims: Claims } | AuthError

export const authError = (reason: AuthErrorReason, detail: string): AuthError => ({ _tag: "AuthError", reason, detail })

export const TOKEN_ROLES: ReadonlyArray<TokenRole> = ["controller", "viewer", "bridge", "operator"]
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

export const signToken = async (secret: string, claims: Claims): Promise<string> => {
  const key = importSigningKey(secret)
  if (!(key instanceof Promise)) throw new Error(key.detail)
  const input = `${HEADER}.${encodeBase64url(utf8.encode(JSON.stringify(claims)))}`
  const sig = await crypto.subtle.sign("HMAC", await key, utf8.encode(input))
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
}

const randomJti = (): string => encodeBase64url(crypto.getRandomValues(new Uint8Array(16)))

/** Mints a token; throws on a bad request (a caller bug: the CLI validates its arguments first). */
export const mintToken = (secret: string, req: MintRequest): Promise<string> => {
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
  }
  const problem = checkClaims({ ...claims })
  if (problem !== undefined) return Promise.reject(new Error(problem))
  return signToken(secret, claims)
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const isNumericDate = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0

/** Returns a description of the first bad claim, or undefined when all claims are well-formed. */
export const checkClaims = (c: Record<string, unknown>): string | undefined => {
  if (typeof c.tenant !== "string" || !NAME_PATTERN.test(c.tenant)) return "tenant"
  if (typeof c.vm !== "string" || !NAME_PATTERN.test(c.vm)) return "vm"
  if (typeof c.role !== "string" || !TOKEN_ROLES.includes(c.role as TokenRole)) return "role"
  if (!isNumericDate(c.exp) || !isNumericDate(c.nbf) || !isNumericDate(c.iat)) return "exp/nbf/iat"
  if (c.exp <= c.nbf) return "exp not after nbf"
  if (typeof c.jti !== "string" || c.jti.length < 8 || c.jti.length > 128) return "jti"
  if (c.once !== undefined && c.once !== true) return "once"
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

/** Verifies signature, algorithm, claims and lifetime. The signature is checked by crypto.subtle.verify (constant time). */
export const verifyToken = async (secret: string, token: string, opts: VerifyOptions = {}): Promise<Verified> => {
  if (token.length > MAX_TOKEN_LENGTH) return authError("malformed", "token too long")
  const parts = token.split(".")
  if (parts.length !== 3) return authError("malformed", "not three segments")
  const [h, p, s] = parts as [string, string, string]
  const header = parseSegment(h)
  if (header === null) return authError("malformed", "header")
  if (header.alg !== "HS256") return authError("unsupported-alg", "only HS256 is accepted")
  if ("crit" in header || (header.typ !== undefined && header.typ !== "JWT")) return authError("unsupported-alg", "unsupported header")
  const sig = decodeBase64url(s)
  if (sig === null || sig.length !== 32) return authError("malformed", "signature")
  const key = importSigningKey(secret)
  if (!(key instanceof Promise)) return key
  const good = await crypto.subtle.verify("HMAC", await key, sig, utf8.encode(`${h}.${p}`))
  if (!good) return authError("bad-signature", "signature does not verify")
  const claims = parseSegment(p)
  if (claims === null) return authError("malformed", "payload")
  const problem = checkClaims(claims)
  if (problem !== undefined) return authError("invalid-claims", problem)
  const c = claims as unknown as Claims
  const now = Math.floor((opts.now ?? Date.now()) / 1000)
  const skew = opts.skewSeconds ?? DEFAULT_SKEW_SECONDS
  if (now >= c.exp + skew) return authError("expired", "token expired")
  if (now < c.nbf - skew) return authError("not-yet-valid", "token not valid yet")
  const { tenant, vm, role, exp, nbf, iat, jti, once } = c
  return { _tag: "Ok", claims: { tenant, vm, role, exp, nbf, iat, jti, ...(once === true ? { once } : {}) } }
}
