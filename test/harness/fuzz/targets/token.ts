// Fuzz target "token": HS256 JWT verification (src/auth/token.ts) on minted tokens, tokens with edited headers, claims
// of the wrong type re-signed with the real key, tokens signed with another key, and byte-mutated strings. Oracles:
// never a throw or rejection; only typed reasons; anything accepted carries a signature that an independent HMAC
// (node:crypto) confirms, canonical base64url segments, well-formed claims equal to its payload, and a live lifetime.
import { createHmac } from "node:crypto"
import { encodeBase64url } from "../../../../src/auth/base64url.ts"
import { DEFAULT_SKEW_SECONDS, NAME_PATTERN, TOKEN_ROLES, verifyToken, type AuthErrorReason } from "../../../../src/auth/token.ts"
import { check, type Features, type FuzzTarget } from "../engine.ts"
import { difference } from "../equal.ts"
import { Rng } from "../rng.ts"

const SECRET = "fuzz-signing-key-0123456789abcdef0123456789"
const OTHER = "another-key-that-is-long-enough-0123456789ab"
const NOW_S = 1_800_000_000
const REASONS: ReadonlySet<AuthErrorReason> = new Set(["malformed", "unsupported-alg", "unknown-key", "wrong-key-type", "bad-signature", "invalid-claims", "expired", "not-yet-valid", "bad-key"])

const utf8 = new TextEncoder()
const b64 = (s: string): string => encodeBase64url(utf8.encode(s))
const sign = (key: string, input: string): string => createHmac("sha256", key).update(input).digest("base64url")

const claimValue = (r: Rng): unknown =>
  r.pick<() => unknown>([
    () => "t1",
    () => "a/b",
    () => "",
    () => "x".repeat(70),
    () => NOW_S + r.range(-100, 100),
    () => -1,
    () => 1.5,
    () => null,
    () => [1],
    () => ({}),
    () => true,
    () => "controller",
    () => "admin",
    () => 2 ** 53,
  ])()

const claims = (r: Rng): Record<string, unknown> => {
  const c: Record<string, unknown> = {
    tenant: r.pick(["acme", "t-2", "a.b_c"]),
    vm: r.pick(["vm1", "vm-2"]),
    role: r.pick(TOKEN_ROLES),
    iat: NOW_S - 10,
    nbf: NOW_S - r.range(-60, 60),
    exp: NOW_S + r.range(-60, 3600),
    jti: "jti-".concat(String(r.u32())),
    ...(r.chance(0.2) ? { once: r.chance(0.8) ? true : 1 } : {}),
  }
  if (r.chance(0.4)) c[r.pick(Object.keys(c))] = claimValue(r)
  if (r.chance(0.1)) delete c[r.pick(Object.keys(c))]
  return c
}

const header = (r: Rng): string =>
  r.chance(0.8)
    ? JSON.stringify({ alg: "HS256", typ: "JWT" })
    : r.pick([
        JSON.stringify({ alg: "none" }),
        JSON.stringify({ alg: "HS512", typ: "JWT" }),
        JSON.stringify({ alg: "HS256", crit: ["exp"] }),
        JSON.stringify({ alg: "HS256", typ: "JWS" }),
        JSON.stringify({ alg: "HS256" }),
        JSON.stringify(["HS256"]),
        "not json",
        JSON.stringify({ alg: "hs256" }),
      ])

const mint = (r: Rng): string => {
  const input = `${b64(header(r))}.${b64(JSON.stringify(claims(r)))}`
  return `${input}.${r.chance(0.85) ? sign(SECRET, input) : r.chance(0.5) ? sign(OTHER, input) : ""}`
}

/** Token-level surgery: swap segments between tokens, strip or pad the signature, non-base64url characters. */
const mutateToken = (r: Rng, input: Uint8Array): Uint8Array => {
  const t = new TextDecoder().decode(input)
  const parts = t.split(".")
  const other = mint(r).split(".")
  const i = r.int(Math.max(1, parts.length))
  switch (r.int(6)) {
    case 0: parts[i] = other[i] ?? ""; break
    case 1: parts[i] = (parts[i] ?? "") + r.pick(["=", "==", "A", "+", "/", " ", "\u00e9"]); break
    case 2: parts.splice(i, 1); break
    case 3: parts.push(other[2] ?? ""); break
    case 4: parts[i] = (parts[i] ?? "").slice(0, -1); break
    default: parts[2] = sign(SECRET, `${parts[0]}.${parts[1]}`)
  }
  return utf8.encode(parts.join("."))
}

const check_accepted = (token: string, claimsOut: Record<string, unknown>): void => {
  const [h, p, s] = token.split(".") as [string, string, string]
  check(sign(SECRET, `${h}.${p}`) === s, "accepted a token whose signature an independent HMAC rejects")
  for (const seg of [h, p, s]) check(encodeBase64url(Buffer.from(seg, "base64url")) === seg, `accepted a non-canonical segment ${seg.slice(0, 20)}`)
  const payload = JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>
  const d = difference(Object.fromEntries(Object.keys(claimsOut).map((k) => [k, payload[k]])), claimsOut)
  check(d === undefined, `claims differ from the payload: ${d}`)
  check(typeof claimsOut.tenant === "string" && NAME_PATTERN.test(claimsOut.tenant), "accepted a bad tenant")
  check(typeof claimsOut.vm === "string" && NAME_PATTERN.test(claimsOut.vm), "accepted a bad vm")
  check(TOKEN_ROLES.includes(claimsOut.role as never), "accepted a bad role")
  const exp = claimsOut.exp as number
  const nbf = claimsOut.nbf as number
  check(NOW_S < exp + DEFAULT_SKEW_SECONDS && NOW_S >= nbf - DEFAULT_SKEW_SECONDS, "accepted a token outside its lifetime")
}

export const tokenTarget: FuzzTarget = {
  name: "token",
  description: "HS256 JWT verification: minted, re-signed, wrong-key and mutated tokens vs an independent HMAC",
  maxInputBytes: 6000,
  covers: ["src/auth/"],
  seeds: () => {
    const r = new Rng(3)
    return Array.from({ length: 64 }, () => utf8.encode(mint(r)))
  },
  generate: (r) => utf8.encode(r.chance(0.02) ? "a".repeat(r.pick([4096, 4097, 5000])) : mint(r)),
  mutate: mutateToken,
  run: async (input: Uint8Array, f: Features) => {
    const token = new TextDecoder().decode(input)
    const v = await verifyToken(SECRET, token, { now: NOW_S * 1000 })
    if (v._tag === "AuthError") {
      check(REASONS.has(v.reason), `untyped reason ${v.reason}`)
      check(v.reason !== "bad-key", "bad-key with a valid key")
      const sig = token.split(".")[2] ?? ""
      check(sig.length < 8 || !v.detail.includes(sig), "the error detail quotes the signature")
      f.add(`${v.reason}:${v.detail.replace(/\d+/g, "N")}`)
      return
    }
    f.add(`ok:${v.claims.role}:${v.claims.once === true}`)
    check_accepted(token, v.claims as unknown as Record<string, unknown>)
  },
}
