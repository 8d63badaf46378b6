// EdDSA tokens with key ids: the relay's key set (several keys at once, for rotation), and every way a token can name
// the wrong key: none, unknown, retired, of another type, or an HS256 token made with a public key as its secret.
import { describe, expect, it } from "vitest"
import { encodeBase64url } from "../../../src/auth/base64url.ts"
import { generateKeyPair, parseJwks, thumbprint, type KeySet, type PublicJwk } from "../../../src/auth/jwk.ts"
import { mintToken, signToken, verifyToken, type Claims, type TokenKeys } from "../../../src/auth/token.ts"

const NOW = 1_800_000_000
const utf8 = new TextEncoder()
const seg = (v: unknown): string => encodeBase64url(utf8.encode(JSON.stringify(v)))
const claims: Claims = { tenant: "acme", vm: "vm-1", role: "viewer", iat: NOW, nbf: NOW, exp: NOW + 60, jti: "abcdefgh12345678" }
const jwks = (...keys: unknown[]): KeySet => {
  const set = parseJwks(JSON.stringify({ keys }))
  if (set instanceof Error) throw set
  return set
}
const reason = async (keys: TokenKeys, token: string) => {
  const r = await verifyToken(keys, token, { now: NOW * 1000 })
  return r._tag === "Ok" ? `ok:${r.kid}` : r.reason
}

const a = await generateKeyPair("2026-11-a")
const b = await generateKeyPair("2026-12-b")
const retired = await generateKeyPair("2026-10-old")

describe("EdDSA with a key set", () => {
  it("accepts a token of every key in the set (the rotation overlap) and says which key signed it", async () => {
    const keys = { jwks: jwks(a.publicJwk, b.publicJwk) }
    expect(await reason(keys, await signToken(a.privateJwk, claims))).toBe("ok:2026-11-a")
    expect(await reason(keys, await signToken(b.privateJwk, claims))).toBe("ok:2026-12-b")
    const minted = await mintToken(b.privateJwk, { tenant: "acme", vm: "vm-1", role: "bridge", ttl: 60, now: NOW, jkt: await thumbprint(a.publicJwk) })
    expect(await verifyToken(keys, minted, { now: NOW * 1000 })).toMatchObject({ _tag: "Ok", claims: { role: "bridge", cnf: { jkt: await thumbprint(a.publicJwk) } } })
  })

  it("refuses a token of a key removed from the set (unknown-key)", async () => {
    expect(await reason({ jwks: jwks(a.publicJwk, b.publicJwk) }, await signToken(retired.privateJwk, claims))).toBe("unknown-key")
  })

  it("refuses a token without kid, and one whose kid names another key (bad-signature)", async () => {
    const [, p, s] = (await signToken(a.privateJwk, claims)).split(".")
    const keys = { jwks: jwks(a.publicJwk, b.publicJwk) }
    expect(await reason(keys, `${seg({ alg: "EdDSA", typ: "JWT" })}.${p}.${s}`)).toBe("unknown-key")
    expect(await reason(keys, `${seg({ alg: "EdDSA", typ: "JWT", kid: "2026-12-b" })}.${p}.${s}`)).toBe("bad-signature")
  })

  it("refuses a kid that names a key of another type (wrong-key-type)", async () => {
    const ec = { kty: "EC", crv: "P-256", kid: "ec-1", x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }
    const keys = { jwks: jwks(a.publicJwk, ec) }
    const [, p, s] = (await signToken(a.privateJwk, claims)).split(".")
    expect(await reason(keys, `${seg({ alg: "EdDSA", kid: "ec-1" })}.${p}.${s}`)).toBe("wrong-key-type")
    expect(await reason(keys, `${seg({ alg: "ES256", kid: "ec-1" })}.${p}.${s}`)).toBe("unsupported-alg")
  })

  it("refuses algorithm confusion: HS256 signed with the public key as the HMAC secret", async () => {
    const pub = a.publicJwk as PublicJwk
    for (const secret of [pub.x, JSON.stringify(pub), JSON.stringify({ keys: [pub] })]) {
      const forged = await signToken(secret.padEnd(32, "="), claims)
      // The relay without HS256 enabled: the algorithm itself is refused.
      expect(await reason({ jwks: jwks(pub) }, forged)).toBe("unsupported-alg")
      // Even where HS256 is enabled, it is checked with the HS256 secret only, never with a key of the set...
      expect(await reason({ jwks: jwks(pub), hs256: "s".repeat(32) }, forged)).toBe("bad-signature")
      // ...and an HS256 header that names a key of the set is refused before any MAC is computed.
      const [, p, s] = forged.split(".")
      expect(await reason({ jwks: jwks(pub), hs256: "s".repeat(32) }, `${seg({ alg: "HS256", kid: pub.kid })}.${p}.${s}`)).toBe("wrong-key-type")
    }
  })

  it("refuses keys carried by the token (jwk, jku) and alg none", async () => {
    const [, p, s] = (await signToken(a.privateJwk, claims)).split(".")
    const keys = { jwks: jwks(a.publicJwk) }
    expect(await reason(keys, `${seg({ alg: "EdDSA", kid: "2026-11-a", jwk: a.publicJwk })}.${p}.${s}`)).toBe("unsupported-alg")
    expect(await reason(keys, `${seg({ alg: "EdDSA", kid: "2026-11-a", jku: "https://evil.example/jwks" })}.${p}.${s}`)).toBe("unsupported-alg")
    expect(await reason(keys, `${seg({ alg: "none", kid: "2026-11-a" })}.${p}.`)).toBe("unsupported-alg")
  })

  it("with no key configured at all, refuses as a deployment error (bad-key)", async () => {
    expect(await reason({}, await signToken(a.privateJwk, claims))).toBe("bad-key")
  })
})

describe("parseJwks", () => {
  it("refuses private keys, symmetric keys, duplicate or missing kids, and non-JSON", () => {
    expect(parseJwks(JSON.stringify({ keys: [a.privateJwk] }))).toBeInstanceOf(Error)
    expect(parseJwks(JSON.stringify({ keys: [{ kty: "oct", kid: "h", k: "c2VjcmV0" }] }))).toBeInstanceOf(Error)
    expect(parseJwks(JSON.stringify({ keys: [a.publicJwk, { ...b.publicJwk, kid: a.publicJwk.kid }] }))).toBeInstanceOf(Error)
    expect(parseJwks(JSON.stringify({ keys: [{ ...a.publicJwk, kid: undefined }] }))).toBeInstanceOf(Error)
    expect(parseJwks("{keys")).toBeInstanceOf(Error)
    expect(parseJwks(JSON.stringify({ keys: [a.publicJwk, b.publicJwk] }))).not.toBeInstanceOf(Error)
  })
})

describe("thumbprint", () => {
  it("matches RFC 8037 appendix A.3", async () => {
    expect(await thumbprint({ x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" })).toBe("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
  })
})
